"""Submissions that try to score without writing the answer: each must score 0 on the part
it attacks (``miniclip/grading/sandbox.py``, ``worker.py``).

The first four are the ones that scored full marks on a grader that switched the library's
functions off inside the process that ran the submission. The attacks on the disk, /proc,
the network and sys.path need the confinement the worker applies when the grader runs as
root (chroot, the user nobody, a network namespace of its own), as Gradescope's autograder
does; they skip elsewhere.
"""
import dataclasses
import os
import pathlib
import re
import socket
import sys
import threading

import pytest
from test_grade import ASSIGNMENTS, ROOT, solution, with_region

from miniclip.grading import assignment as assignments
from miniclip.grading import wire

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the grader confines a submission "
                             "(chroot, user nobody, no network) only when it runs as root")


def score(name, part, text, tmp_path, time_limit_s=30):
    """The result of grading ``part`` of ``text`` alone."""
    assignment = ASSIGNMENTS[name]
    only = dataclasses.replace(assignment, parts=tuple(p for p in assignment.parts
                                                       if p.id == part))
    path = tmp_path / assignment.submission
    path.write_text(text, "utf-8")
    (result,) = assignments.grade(only, path, time_limit_s)
    return result


def attack(name, part, body, tmp_path, time_limit_s=30):
    result = score(name, part, with_region(name, part, body), tmp_path, time_limit_s)
    assert result.score == 0, result
    return result


def test_the_graders_own_finite_differences_are_not_there(tmp_path):
    result = attack("linear_softmax", "A1c", (
        "from miniclip.grading import numerical_gradients\n"
        "x = np.log(y)\n"
        "return numerical_gradients(lambda x: softmax_forward(x, axis), (x,), gy)[0]"),
        tmp_path)
    assert result.status == "library"
    assert "miniclip.grading.checks:numerical_gradients" in result.feedback


def test_the_librarys_gradcheck_is_not_there_either(tmp_path):
    result = attack("linear_softmax", "A1c", (
        "from miniclip.functional import gradcheck\n"
        "gradcheck.gradcheck(lambda x: x, [np.log(y)])\n"
        "return y"), tmp_path)
    assert result.status == "library"


def test_running_the_autograd_engine_directly_finds_no_engine(tmp_path):
    result = attack("linear_softmax", "A1c", (
        "import miniclip\n"
        "from miniclip import autograd\n"
        "x = miniclip.Tensor(np.log(y), requires_grad=True)\n"
        "e = x.exp()\n"
        "out = e / e.sum(dim=axis, keepdim=True)\n"
        "autograd._run_backward(out, gy, False)\n"
        "return x.grad"), tmp_path)
    assert result.status == "library"


def test_reloading_the_library_brings_nothing_back(tmp_path):
    result = attack("attention", "A4b", (
        "import importlib\n"
        "import miniclip.nn.attention as library\n"
        "importlib.reload(library)\n"
        "from miniclip import Tensor\n"
        "out, weights = library.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v),\n"
        "                                                    mask, True)\n"
        "return out.numpy(), weights.numpy()"), tmp_path)
    assert result.status == "library"


def test_the_solution_file_is_nowhere_near_the_submission(tmp_path):
    result = attack("linear_softmax", "A1a", (
        "import glob, importlib.util, os, miniclip\n"
        "top = os.path.dirname(os.path.dirname(miniclip.__file__))\n"
        "found = glob.glob(top + '/**/solution.py', recursive=True)\n"
        "found += glob.glob(os.getcwd() + '/**/solution.py', recursive=True)\n"
        "spec = importlib.util.spec_from_file_location('s', found[0])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "return module.linear_input_gradient(w, gy)"), tmp_path)
    assert result.status == "error" and "IndexError" in result.feedback


def test_finite_differences_written_in_the_submission_fail_on_precision(tmp_path):
    result = attack("linear_softmax", "A1c", (
        "x, grad = np.log(y), np.zeros_like(y)\n"
        "for i in np.ndindex(x.shape):\n"
        "    up, down = x.copy(), x.copy()\n"
        "    up[i] += 1e-6\n"
        "    down[i] -= 1e-6\n"
        "    grad[i] = ((softmax_forward(up, axis) - softmax_forward(down, axis)) * gy).sum() / 2e-6\n"
        "return grad"), tmp_path)
    assert result.status == "failed"
    assert "finite differences? It must be derived" in result.feedback


def test_exact_complex_steps_element_by_element_run_out_of_time(tmp_path):
    result = attack("linear_softmax", "A1a", (
        "x = np.zeros(gy.shape[:-1] + w.shape[1:])\n"
        "grad = np.zeros_like(x)\n"
        "for i in np.ndindex(x.shape):\n"
        "    step = x.astype(complex)\n"
        "    step[i] += 1e-30j\n"
        "    grad[i] = (gy * (step @ w.T)).sum().imag / 1e-30\n"
        "return grad"), tmp_path, time_limit_s=5)
    assert result.status == "timeout"


def test_patching_the_checker_changes_nothing_here(tmp_path):
    attack("layer_norm", "A2a", (
        "import miniclip.grading.checks as checks\n"
        "checks.Check.close = lambda *args, **kwargs: None\n"
        "checks.ExerciseError = type('Nothing', (Exception,), {})\n"
        "return np.zeros_like(x)"), tmp_path)


def test_exiting_at_import_or_during_a_call_scores_nothing(tmp_path):
    at_import = score("bpe", "A5a", "import os\nos._exit(0)\n", tmp_path)
    assert (at_import.status, at_import.score) == ("exited", 0)
    during = attack("bpe", "A5a", "import os\nos._exit(0)", tmp_path)
    assert during.status == "exited"


def test_huge_output_and_a_huge_answer_are_cut_short(tmp_path, monkeypatch):
    printed = attack("bpe", "A5b", "print('x' * 10 ** 8)\nreturn {}", tmp_path)
    assert printed.status == "failed"
    monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", 2 ** 20)    # the grader's side of it
    returned = attack("bpe", "A5b", "import numpy\nreturn {('a', 'b'): numpy.zeros(10 ** 6)}",
                      tmp_path)
    assert returned.status == "error" and "more than 1 MiB" in returned.feedback


def test_a_submission_can_neither_fork_nor_write_a_file(tmp_path):
    target = tmp_path / "results.json"
    result = attack("bpe", "A5b", (
        "import os\n"
        f"open({str(target)!r}, 'w').write('{{\"score\": 10}}')\n"
        "return {}"), tmp_path)
    assert result.status == "error" and not (target.exists() and target.read_text())
    forked = attack("bpe", "A5b", "import os\nos.fork()\nreturn {}", tmp_path)
    assert forked.status == "error" and "BlockingIOError" in forked.feedback


def test_asking_the_grader_for_a_reference_it_does_not_give(tmp_path):
    result = attack("im2col", "A3b", (
        "import gc\n"
        "channel = next(o for o in gc.get_objects() if type(o).__name__ == '_Channel')\n"
        "channel.send(callback='col2im', args=[cols, x_shape, kh, kw, stride, padding],\n"
        "             kwargs={})\n"
        "return channel.receive()['returned']"), tmp_path)
    assert result.status == "error" and "which this part does not give" in result.feedback


@AS_ROOT
def test_the_repository_on_disk_is_out_of_reach(tmp_path):
    known = ROOT / "assignments" / "layer_norm"
    result = attack("layer_norm", "A2a", (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('h', {str(known / 'solution.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "return module.layer_norm_forward(x, w, b, eps)"), tmp_path)
    assert result.status == "error" and "FileNotFoundError" in result.feedback


@AS_ROOT
def test_the_graders_process_cannot_be_read_through_proc(tmp_path):
    result = attack("layer_norm", "A2a", (
        "import os\n"
        "parent = os.getppid()\n"
        "text = open(f'/proc/{parent}/cmdline', 'rb').read()\n"
        "text += open(f'/proc/{parent}/environ', 'rb').read()\n"
        "return np.zeros_like(x) + len(text)"), tmp_path)
    assert result.status == "error" and "FileNotFoundError" in result.feedback


@AS_ROOT
def test_reimporting_miniclip_from_elsewhere_finds_nothing(tmp_path):
    result = attack("layer_norm", "A2a", (
        "import sys\n"
        "for name in [n for n in sys.modules if n.startswith('miniclip')]:\n"
        "    del sys.modules[name]\n"
        "sys.path[:] = [p for p in sys.path if 'edition' not in p]\n"
        f"sys.path.append({str(ROOT)!r})\n"
        "import miniclip.functional as F\n"
        "return F.layer_norm(miniclip.Tensor(x), (x.shape[-1],), miniclip.Tensor(w),\n"
        "                    miniclip.Tensor(b), eps).numpy()"), tmp_path)
    assert result.status == "error" and "ModuleNotFoundError" in result.feedback


@AS_ROOT
def test_the_network_is_unreachable(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)))
    thread.start()
    try:
        result = attack("bpe", "A5b", (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=2).recv(1)\n"
            "return {}"), tmp_path)
    finally:
        socket.create_connection(("127.0.0.1", port)).close()   # ends the accept
        thread.join()
        server.close()
    assert result.status == "error" and "Error" in result.feedback
    assert accepted == [1]                                      # only our own connection


def _accept(server):
    connections = 0
    try:
        connection, _ = server.accept()
        connections += 1
        connection.close()
    except OSError:
        pass
    return connections


def test_the_tests_here_attack_the_reference_solutions_parts(tmp_path):
    """The attacks above replace a part of the reference solution, which scores full marks
    on that part as it is (so each 0 above is the attack's doing)."""
    for name, part in (("linear_softmax", "A1c"), ("bpe", "A5b"), ("layer_norm", "A2a")):
        assert score(name, part, solution(name), tmp_path).status == "passed"
    assert pathlib.Path(sys.executable).exists()


def solution_regions():
    """(file, region's code lines) for every solution region in the repository: the
    package's modules (any depth), the assignments' solutions and the notebook sources.
    A line that the same files, or the public tests, also hold outside every region
    (``gy = gy.astype(...)``, ``np.pad``) is no answer, and is left out."""
    from miniclip.grading.solutions import _BEGIN_SOLUTION, _END_SOLUTION
    files = [*sorted((ROOT / "miniclip").rglob("*.py")),
             *sorted((ROOT / "assignments").glob("*/solution.py")),
             *sorted((ROOT / "notebooks" / "src").glob("*.py"))]
    regions, outside = [], set()
    for path in files:
        inside = None
        for line in path.read_text("utf-8").splitlines():
            if _BEGIN_SOLUTION.match(line):
                inside = []
            elif _END_SOLUTION.match(line) and inside is not None:
                regions.append((path, inside))
                inside = None
            elif inside is not None and len(line.strip()) >= 16:   # not `return out`
                inside.append(line.strip())
            elif inside is None:
                outside.add(line.strip())
    for public_tests in (ROOT / "assignments").glob("*/test_*.py"):     # handed out as such
        outside |= {line.strip() for line in public_tests.read_text("utf-8").splitlines()}
    return [(path, [line for line in lines if line not in outside]) for path, lines in regions]


def test_the_student_distribution_holds_no_solution_body(tmp_path):
    from miniclip.grading.distribution import export_student_distribution
    out = export_student_distribution(tmp_path / "students")
    texts = {}
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text("utf-8", errors="replace")
            if path.suffix == ".ipynb":           # the cells' sources, not their JSON
                import json
                text = "\n".join("".join(cell["source"]) for cell in
                                 json.loads(text)["cells"])
            texts[path] = {line.strip() for line in text.splitlines()}
    names = {path.name for path in texts}
    assert not names & {"solution.py", "hidden_tests.py", "rubric.json"}
    regions = solution_regions()
    with_regions = {path for path, _ in regions if path.is_relative_to(ROOT / "miniclip")}
    marked = {path for path in (ROOT / "miniclip").rglob("*.py")      # at any depth
              if re.search(r"^ *# BEGIN SOLUTION ", path.read_text("utf-8"), re.MULTILINE)}
    assert with_regions == marked and ROOT / "miniclip" / "optim" / "optimizers.py" in marked
    for source, lines in regions:
        for line in lines:
            leaks = [str(path.relative_to(out)) for path, found in texts.items() if line in found]
            assert not leaks, f"{source.relative_to(ROOT)}: {line!r} is in {leaks}"


def test_an_answer_whose_array_header_lies_about_its_shape_is_refused_unread():
    """np.load allocates the shape a header declares before reading: a worker that wrote
    its own message could ask the grader for 48 TB with 63 bytes."""
    import base64
    import json

    import numpy as np
    line = wire.dumps({"value": np.arange(6.0).reshape(2, 3)})
    message = json.loads(line)
    data = base64.b64decode(message["value"]["array"])
    message["value"]["array"] = base64.b64encode(
        data.replace(b"(2, 3)", b"(2000000, 3000000)")).decode("ascii")
    with pytest.raises(wire.WireError, match=r"shape \(2000000, 3000000\).*does not match"):
        wire.loads(json.dumps(message).encode("utf-8"))
