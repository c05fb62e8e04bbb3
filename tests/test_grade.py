"""The assignments' grader (``python -m miniclip.grade``, ``miniclip/grading/assignment.py``)
on every assignment in ``assignments/``: the starter scores 0, the reference solution full
marks, a subtle mistake loses exactly its part, an endless loop is a timeout within the
limit, and calling the library's op scores 0 on that part. Then the ways a submission can
fail, the report, the handout, the Gradescope autograder and the student edition of the
package. (tests/test_grade_redteam.py: the submissions that try to cheat.)"""
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import miniclip.functional as F
from miniclip import Tensor
from miniclip.grading import assignment as assignments
from miniclip.grading.cli import main
from miniclip.grading.solutions import export_student_edition

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASSIGNMENTS = {path.parent.name: assignments.load(path.parent)
               for path in sorted((ROOT / "assignments").glob("*/rubric.json"))}

#: assignment -> (the part a subtle mistake costs, the solution's line, the mistaken line)
MISTAKES = {
    "linear_softmax": ("A1b", "return rows_gy.T @ rows_x,",              # dL/dw transposed
                       "return rows_x.T @ rows_gy,"),
    "layer_norm": ("A2c", "gx = rstd * (g - g.mean(axis=-1, keepdims=True)\n"   # statistics
                         "                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))",
                   "gx = rstd * (g - g.mean(axis=-1, keepdims=True))"),    # taken as constants
    "im2col": ("A3d", "gw = (g @ cols.T).reshape(weight_shape)",          # the kernel's axes
               "gw = (cols @ g.T).reshape(weight_shape)"),               # in the wrong order
    "attention": ("A4a", "np.full((length, length), -np.inf), k=1)",      # hides the diagonal:
                  "np.full((length, length), -np.inf), k=0)"),           # off by one
    "bpe": ("A5a", "merged, i = [], 0\n"                                 # overlapping pairs
                  "    while i < len(symbols):\n"                         # taken from the left
                  "        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == tuple(pair):\n"
                  "            merged.append(symbols[i] + symbols[i + 1])\n"
                  "            i += 2\n"
                  "        else:\n"
                  "            merged.append(symbols[i])\n"
                  "            i += 1",
            "merged, i = [], len(symbols) - 1\n"                         # ... from the right
            "    while i >= 0:\n"
            "        if i > 0 and (symbols[i - 1], symbols[i]) == tuple(pair):\n"
            "            merged.insert(0, symbols[i - 1] + symbols[i])\n"
            "            i -= 2\n"
            "        else:\n"
            "            merged.insert(0, symbols[i])\n"
            "            i -= 1"),
    "clip_adamw": ("A6c", "m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)",
                   "m_hat, v_hat = m, v"),                               # no bias correction
}
MISTAKES["im2col_col2im"] = ("A3b", "padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += \\",
                             "padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] = \\")

#: assignment -> the part whose solution region an endless loop replaces
LOOPS = {"linear_softmax": "A1c", "layer_norm": "A2a", "im2col": "A3a", "attention": "A4a",
         "bpe": "A5b", "clip_adamw": "A6c"}

#: assignment -> (a part, a body for it that calls the library's op instead)
LIBRARY_CALLS = {
    "linear_softmax": ("A1c", "import miniclip, miniclip.functional as F\n"
                             "x = miniclip.Tensor(np.log(y), requires_grad=True)\n"
                             "F.softmax(x, dim=axis).backward(gy)\n"
                             "return x.grad"),
    "layer_norm": ("A2a", "import miniclip, miniclip.functional as F\n"
                         "t = [miniclip.Tensor(a) for a in (x, w, b)]\n"
                         "return F.layer_norm(t[0], (x.shape[-1],), t[1], t[2], eps).numpy()"),
    "im2col": ("A3c", "import miniclip, miniclip.functional as F\n"
                     "t = [miniclip.Tensor(a) for a in (x, weight, bias)]\n"
                     "return F.conv2d(*t, stride=stride, padding=padding).numpy()"),
    "attention": ("A4b", "from miniclip import Tensor\n"
                        "from miniclip.nn.attention import scaled_dot_product_attention as sdpa\n"
                        "out, weights = sdpa(Tensor(q), Tensor(k), Tensor(v), mask, True)\n"
                        "return out.numpy(), weights.numpy()"),
    "bpe": ("A5d", "from miniclip.tokenizer.bpe import apply_merges as library\n"
                  "return library(list(symbols), {tuple(p): r for r, p in enumerate(merges)})"),
    "clip_adamw": ("A6a", "from miniclip import Tensor\n"
                         "from miniclip.training.loss import clip_loss_from_features as loss\n"
                         "import numpy as np\n"
                         "eye = [Tensor(np.eye(a.shape[1])) for a in (image_features, text_features)]\n"
                         "return float(loss(Tensor(image_features), Tensor(text_features), *eye,\n"
                         "                  Tensor(np.array(t))).numpy())"),
}


def solution(name):
    return (ASSIGNMENTS[name].folder / "solution.py").read_text("utf-8")


def with_region(name, part, body):
    """The reference solution with the solution region of ``part`` replaced by ``body``."""
    pattern = re.compile(rf"^( *)# BEGIN SOLUTION {part}\b.*?# END SOLUTION\n",
                         re.DOTALL | re.MULTILINE)
    match = pattern.search(solution(name))
    assert match, (name, part)
    indented = "".join(f"{match[1]}{line}\n" for line in body.splitlines())
    return pattern.sub(lambda _: indented, solution(name), count=1)


def graded(name, tmp_path, text, time_limit_s=30):
    assignment = ASSIGNMENTS[name]
    path = tmp_path / assignment.submission
    path.write_text(text, "utf-8")
    return {result.part.id: result for result in
            assignments.grade(assignment, path, time_limit_s)}


def test_there_are_six_assignments_of_ten_points_each():
    assert sorted(ASSIGNMENTS) == sorted(["linear_softmax", "layer_norm", "im2col",
                                          "attention", "bpe", "clip_adamw"])
    assert all(a.points == 10 for a in ASSIGNMENTS.values())


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_the_starter_scores_zero_and_every_part_is_not_done(name, tmp_path):
    results = graded(name, tmp_path, assignments.starter_code(ASSIGNMENTS[name]))
    assert {r.status for r in results.values()} == {"not done"}
    assert sum(r.score for r in results.values()) == 0


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_the_reference_solution_scores_full_marks(name, tmp_path):
    results = graded(name, tmp_path, solution(name))
    assert {r.status for r in results.values()} == {"passed"}, results
    assert sum(r.score for r in results.values()) == 10


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_subtle_mistake_loses_exactly_its_part(mistake, tmp_path):
    name = mistake.split("_col2im")[0]
    part, right, wrong = MISTAKES[mistake]
    assert solution(name).count(right) == 1
    results = graded(name, tmp_path, solution(name).replace(right, wrong))
    assert [p for p, r in results.items() if r.status != "passed"] == [part], results
    assert results[part].status == "failed"
    assert sum(r.score for r in results.values()) == 10 - results[part].part.points


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_an_endless_loop_is_a_timeout_within_the_limit(name, tmp_path):
    looping = [part for part in ASSIGNMENTS[name].parts if part.id == LOOPS[name]]
    assignment = dataclasses.replace(ASSIGNMENTS[name], parts=tuple(looping))
    path = tmp_path / assignment.submission
    path.write_text(with_region(name, LOOPS[name], "while True:\n    pass"), "utf-8")
    start = time.perf_counter()
    (result,) = assignments.grade(assignment, path, time_limit_s=1.0)
    assert (result.status, result.score) == ("timeout", 0)
    assert result.feedback.startswith("did not finish within 1 s")
    assert time.perf_counter() - start < 1.0 + 5.0       # the worker's start and its kill


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_calling_the_librarys_op_scores_zero_on_that_part(name, tmp_path):
    part, body = LIBRARY_CALLS[name]
    results = graded(name, tmp_path, with_region(name, part, body))
    assert results[part].status == "library", results[part]
    assert "which is left out while grading: this part must be your own code" in \
        results[part].feedback
    assert all(r.status == "passed" for p, r in results.items() if p != part)


def test_the_library_is_back_in_the_grader_after_grading(tmp_path):
    graded("layer_norm", tmp_path, solution("layer_norm"))
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    F.layer_norm(x, (3,), None, None).sum().backward()
    assert x.grad.shape == (2, 3)


def test_an_error_exit_and_crash_are_reported_per_part_with_the_line(tmp_path):
    text = with_region("linear_softmax", "A1c", "raise ValueError('oops')")
    text = text.replace("    rows_gy = gy.reshape(-1, gy.shape[-1])",
                        "    import sys\n    sys.exit(3)\n    rows_gy = 0")
    results = graded("linear_softmax", tmp_path, text)
    line = text.splitlines().index("    raise ValueError('oops')") + 1
    assert results["A1c"].feedback == (f"your code raised ValueError: oops "
                                      f"(line {line} of linear_softmax.py)")
    assert results["A1b"].status == "exited"
    assert results["A1b"].feedback.startswith("your code called exit(3) (line ")
    assert results["A1a"].status == "passed"          # its own function: no shared crash
    crash = graded("linear_softmax", tmp_path, "import os\nos._exit(7)\n")
    assert {r.feedback for r in crash.values()} == {
        "the process ended (exit code 7) before the checks finished: does your code call "
        "exit() or os._exit()?"}


def test_a_rubric_that_names_what_miniclip_no_longer_has_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="nothing in miniclip matches miniclip.optim:Adam: update"):
        export_student_edition(tmp_path, ("miniclip.optim:Adam", "miniclip.autograd:Tensor"))


@pytest.mark.parametrize("name, crashing, sibling", [
    ("linear_softmax", "A1b", "A1a"), ("layer_norm", "A2b", "A2c"), ("im2col", "A3d", "A3e")])
def test_the_gradient_parts_of_one_backward_do_not_share_a_crash(name, crashing, sibling,
                                                                 tmp_path):
    both = [part for part in ASSIGNMENTS[name].parts if part.id in (crashing, sibling)]
    assignment = dataclasses.replace(ASSIGNMENTS[name], parts=tuple(both))
    path = tmp_path / assignment.submission
    path.write_text(with_region(name, crashing, "raise ValueError('oops')"), "utf-8")
    results = {r.part.id: r.status for r in assignments.grade(assignment, path, 30)}
    assert results == {crashing: "error", sibling: "passed"}


def test_a_missing_submission_scores_zero(tmp_path):
    results = assignments.grade(ASSIGNMENTS["bpe"], tmp_path / "bpe.py")
    assert [r.feedback for r in results][0] == "no file bpe.py was found (submit bpe.py)"


def test_the_report_names_the_part_and_the_worst_element_without_the_answer(tmp_path, capsys):
    part, right, wrong = MISTAKES["layer_norm"]
    path = tmp_path / "layer_norm.py"
    path.write_text(solution("layer_norm").replace(right, wrong), "utf-8")
    assert main([str(ASSIGNMENTS["layer_norm"].folder), str(path), "--time-limit", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Assignment 2: layer normalisation, forward and backward"
    assert lines[1].split() == ["A2a", "the", "forward", "pass", "2", "/", "2", "passed", "(5",
                                "checks)"]
    assert re.fullmatch(r"  A2c  dL/dx +0 / 5  dL/dx for x \(3, 4\): \d+ of 12 elements "
                        r"differ; the worst at index \(\d, \d\): expected -?[\d.e-]+, got "
                        r"-?[\d.e-]+ \(\|difference\| [\d.e-]+, allowed [\d.e-]+\)", lines[3])
    assert lines[-1] == "score: 5 / 10"


def test_a_released_assignment_keeps_its_answers_in_the_package_and_loses_its_handout(tmp_path):
    assert main(["export-student", str(tmp_path), "--release", "bpe"]) == 0
    bpe = (tmp_path / "miniclip" / "tokenizer" / "bpe.py").read_text("utf-8")
    layers = (tmp_path / "miniclip" / "functional" / "layers.py").read_text("utf-8")
    assert "NotImplementedError" not in bpe and "# BEGIN SOLUTION" not in bpe
    assert "left out of the student edition" in layers
    assert not (tmp_path / "assignments" / "bpe").exists()
    assert (tmp_path / "assignments" / "layer_norm" / "layer_norm.py").is_file()


def test_grading_works_from_any_directory_and_a_wrong_path_is_one_line(tmp_path):
    path = tmp_path / "bpe.py"
    path.write_text(solution("bpe"), "utf-8")
    program = [sys.executable, "-m", "miniclip.grade"]
    done = subprocess.run(program + ["bpe", str(path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "score: 10 / 10", done
    wrong = subprocess.run(program + ["bpe", str(tmp_path / "bp.py")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert (wrong.returncode, wrong.stderr) == (
        2, f"python -m miniclip.grade: error: no file {tmp_path / 'bp.py'}: give the path of your "
           "bpe.py\n")


def test_the_handout_has_the_starter_the_public_tests_and_no_solution(tmp_path):
    written = assignments.write_handout(ASSIGNMENTS["bpe"], tmp_path)
    assert sorted(p.name for p in written) == ["bpe.py", "handout.md", "test_bpe.py"]
    starter = (tmp_path / "bpe.py").read_text("utf-8")
    assert "raise NotImplementedError('A5c: learn_merges: not written yet')" in starter
    assert "heapq" not in starter and "i += 2" not in starter


def test_the_public_tests_pass_on_the_solutions_and_fail_on_the_starters(tmp_path):
    for edition in ("solution", "starter"):
        for name, assignment in ASSIGNMENTS.items():
            folder = tmp_path / edition / name
            assignments.write_handout(assignment, folder)
            if edition == "solution":
                (folder / assignment.submission).write_text(solution(name), "utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = {edition: subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(tmp_path / edition), str(tmp_path / edition)],
        env=env, capture_output=True, text=True, timeout=300).stdout
        for edition in ("solution", "starter")}
    count = sum(len(re.findall(r"^def test_", (a.folder / f"test_{a.name}.py").read_text(
        "utf-8"), re.MULTILINE)) for a in ASSIGNMENTS.values())
    assert f"{count} passed" in runs["solution"], runs["solution"]
    assert f"{count} failed" in runs["starter"], runs["starter"]
    assert runs["starter"].count("not done yet") >= count


#: The mistakes the handouts warn about: (assignment, the part, the solution's line, the
#: mistaken line). Each must fail a public test, whose message names the part.
PUBLIC_MISTAKES = {
    "linear_2d_only": ("linear_softmax", "A1b", "rows_gy = gy.reshape(-1, gy.shape[-1])",
                       "rows_gy = gy"),
    "linear_transpose": ("linear_softmax", "A1b", "return rows_gy.T @ rows_x,",
                         "return rows_x.T @ rows_gy,"),
    "softmax_last_axis": ("linear_softmax", "A1c", "(gy * y).sum(axis=axis, keepdims=True)",
                          "(gy * y).sum(axis=-1, keepdims=True)"),
    "layer_norm_2d_only": ("layer_norm", "A2b", "leading = tuple(range(x.ndim - 1))",
                           "leading = (0,)"),
    "layer_norm_constant_statistics": ("layer_norm", "A2c", *MISTAKES["layer_norm"][1:]),
    "attention_without_scale": ("attention", "A4b", "np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])",
                                "np.swapaxes(k, -1, -2)"),
    "conv_weight_transpose": ("im2col", "A3d", *MISTAKES["im2col"][1:]),
}


def test_each_mistake_a_handout_warns_about_fails_a_public_test_of_its_part(tmp_path):
    runs = {}
    for mistake, (name, _, right, wrong) in PUBLIC_MISTAKES.items():
        assert solution(name).count(right) == 1, mistake
        folder = tmp_path / mistake
        assignments.write_handout(ASSIGNMENTS[name], folder)
        (folder / ASSIGNMENTS[name].submission).write_text(solution(name).replace(right, wrong),
                                                           "utf-8")
        runs[mistake] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
             "--rootdir", str(folder), str(folder)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for mistake, run in runs.items():
        output = run.communicate(timeout=300)[0]
        part = PUBLIC_MISTAKES[mistake][1]
        assert run.returncode == 1, f"{mistake}: the public tests pass\n{output}"
        assert f"exercise {part}: " in output, f"{mistake}: no message names {part}\n{output}"


def test_the_gradescope_zip_holds_the_scripts_the_package_and_the_assignment(tmp_path):
    path = tmp_path / "autograder.zip"
    assert main(["autograder", str(ASSIGNMENTS["attention"].folder), str(path)]) == 0
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        script = archive.read("run_autograder").decode()
    assert {"setup.sh", "run_autograder", "requirements.txt", "miniclip/__init__.py",
            "miniclip/grade.py", "assignment/attention/rubric.json",
            "assignment/attention/hidden_tests.py"} <= names
    assert not any(name.endswith("solution.py") for name in names)
    with zipfile.ZipFile(path) as archive:
        assert not any(re.search(rb"^ *# BEGIN SOLUTION ", archive.read(name), re.MULTILINE)
                       for name in names)
    assert not any("__pycache__" in name for name in names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert '"$root/submission/attention.py"' in script


def test_run_autograder_writes_gradescope_results(tmp_path):
    archive = tmp_path / "autograder.zip"
    main(["autograder", str(ASSIGNMENTS["clip_adamw"].folder), str(archive)])
    root = tmp_path / "autograder"
    zipfile.ZipFile(archive).extractall(root / "source")
    (root / "submission").mkdir()
    part, right, wrong = MISTAKES["clip_adamw"]
    (root / "submission" / "clip_adamw.py").write_text(solution("clip_adamw").replace(
        right, wrong), "utf-8")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=sys.executable,
               PYTHONPATH="")
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text("utf-8"))
    assert results["score"] == 6
    assert [(t["name"], t["score"], t["max_score"]) for t in results["tests"]] == [
        ("A6a the loss", 3, 3), ("A6b dL/dlogits in closed form", 3, 3),
        ("A6c the AdamW update", 0, 4)]
    assert results["tests"][2]["output"].startswith("theta after step 1: ")


def test_the_student_edition_imports_its_stubs_name_the_assignment_and_the_rest_works(tmp_path):
    assert main(["export-student", str(tmp_path)]) == 0
    assert (tmp_path / "notebooks" / "student" / "01_autograd.ipynb").is_file()
    assert (tmp_path / "assignments" / "bpe" / "test_bpe.py").is_file()
    program = """
import numpy as np
import miniclip, miniclip.functional as F
from miniclip.tokenizer import bpe
assert miniclip.__file__.startswith(%r), miniclip.__file__
x = miniclip.Tensor(np.array([[-1.0, 2.0]]), requires_grad=True)
F.relu(x).sum().backward()
print("relu grad", x.grad.tolist())
for call in (lambda: bpe.merge_pair(["a", "b"], ("a", "b")),
             lambda: F.linear(x, x).sum().backward()):
    try:
        call()
    except NotImplementedError as error:
        print("stub:", error)
""" % str(tmp_path)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "relu grad [[0.0, 1.0]]",
        "stub: assignment bpe, 5a: merge_pair: left out of the student edition of miniclip "
        "(write it in your submission)",
        "stub: assignment linear_softmax, 1a-1b: Linear.backward: left out of the student "
        "edition of miniclip (write it in your submission)"]
    stubbed = (tmp_path / "miniclip" / "functional" / "layers.py").read_text("utf-8")
    assert "gy.T @ self.x" not in stubbed and "# BEGIN SOLUTION" not in stubbed
    # a student runs an assignment's public tests there, on the distribution's own package
    folder = tmp_path / "assignments" / "linear_softmax"
    (folder / "linear_softmax.py").write_text(solution("linear_softmax"), "utf-8")
    public = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "no:xdist", "--rootdir", str(folder), str(folder)],
                            cwd=folder, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                            capture_output=True, text=True, timeout=300)
    assert "4 passed" in public.stdout, public.stdout
