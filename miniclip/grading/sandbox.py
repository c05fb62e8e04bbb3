"""Running a submission where only its own code can answer: a fresh process per part.

``Sandbox`` makes a folder with the *grading edition* of miniclip (``solutions``: the
student edition with the assignment's ops, the autograd engine and the finite differences
cut) and a copy of the submitted file, and nothing else. ``run_part`` starts
``sys.executable`` there (``worker``: isolated mode, no inherited environment, no path
back to this process's miniclip, the assignment folder, its solution or its hidden tests)
and gives the part's check a ``Submission``: calling ``submission.f(x)`` sends ``x`` to
the process, which runs the submission's ``f`` and sends back what it returned (and the
arguments it changed). The check, the references and the expected values stay in this
process; a submission can only hand back values.

The part's time limit counts from the moment the process starts importing the submission;
past it the process is killed, and so is one that sends more than ``wire.MAX_MESSAGE_BYTES``
or ends before the check does.
"""
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time

from . import wire
from .solutions import export_student_edition

#: Cut from every grading edition: the finite differences a submission could measure its
#: gradients with instead of deriving them, and the grader's own references.
ALWAYS_ABSENT = ("miniclip.grading.checks:numerical_gradient*",
                 "miniclip.grading.exact:*",
                 "miniclip.functional.gradcheck:*")

#: Seconds a process may take to import NumPy and miniclip, before the time limit starts.
START_UP_S = 120.0
#: The memory a submission's process may map.
MEMORY_BYTES = 8 * 2 ** 30
# The worker and its codec load as a package of their own, without miniclip's __init__ (a
# second of imports that a submission using NumPy alone does not need).
_BOOT = ("import sys, json, types; config = json.loads(sys.argv[1]); "
         "grader = types.ModuleType('miniclip_grader'); "
         "grader.__path__ = [config['folder'] + '/edition/miniclip/grading']; "
         "sys.modules['miniclip_grader'] = grader; "
         "sys.path[:0] = [config['folder'] + '/edition']; "
         "from miniclip_grader.worker import main; main(config)")


class PartEnded(Exception):
    """The submission's process ended the part: ``status`` and ``feedback`` say how."""

    def __init__(self, status, feedback):
        super().__init__(feedback)
        self.status, self.feedback = status, feedback


class Sandbox:
    """The folder a submission runs in, for all the parts of one grading."""

    def __init__(self, submission, absent):
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="miniclip-grade-"))
        export_student_edition(self.folder / "edition", ALWAYS_ABSENT + tuple(absent))
        (self.folder / "submission").mkdir()
        self.file = pathlib.Path(submission).name
        shutil.copyfile(submission, self.folder / "submission" / self.file)
        for path in [self.folder, *self.folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)       # nobody reads, nobody writes
        # Inside the chroot the folder's own path leads back to its root, so paths in
        # tracebacks and module files read the same inside and out.
        link = self.folder / self.folder.relative_to(self.folder.anchor)
        link.parent.mkdir(parents=True, mode=0o755)
        link.symlink_to("/")

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Submission:
    """The submitted module as the hidden tests see it: each attribute is a function that
    runs in the submission's process."""

    def __init__(self, process, deadline, given):
        self._process, self._deadline, self._given = process, deadline, given

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            self._process.send(call=name, args=list(args), kwargs=kwargs)
            while True:
                reply = self._process.receive(self._deadline)
                if "callback" not in reply:
                    break
                self._answer_callback(reply)
            if "raised" in reply:
                raise PartEnded(*reply["raised"])
            for index, value in reply["changed"].items():
                _update_in_place(args[int(index)], value)
            return reply["returned"]
        return call

    def _answer_callback(self, request):
        function = self._given.get(request["callback"])
        if function is None:
            raise PartEnded("error", f"your code called back for {request['callback']}, "
                                     "which this part does not give")
        try:
            returned = function(*request["args"], **request["kwargs"])
        except Exception as error:             # the submission called it with bad arguments
            self._process.send(raised=f"{type(error).__name__}: {error}")
            return
        self._process.send(returned=returned)


def _update_in_place(argument, value):
    """Give the grader's copy of an argument the change the submission made to its own."""
    try:
        if isinstance(argument, list):
            argument[:] = value
        elif isinstance(argument, dict):
            argument.clear()
            argument.update(value)
        elif hasattr(argument, "shape"):
            argument[...] = value
    except (TypeError, ValueError):            # reshaped or retyped: changed all the same
        if hasattr(argument, "shape"):
            argument[...] = float("nan")


class _Process:
    def __init__(self, sandbox, given):
        config = {"folder": str(sandbox.folder), "file": sandbox.file, "given": sorted(given),
                  "memory_bytes": MEMORY_BYTES}
        environment = {"PATH": os.defpath, "HOME": str(sandbox.folder), "LC_ALL": "C.UTF-8",
                       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                       "MKL_NUM_THREADS": "1"}
        if "OPENBLAS_CORETYPE" in os.environ:           # the machine's setting, kept
            environment["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
        self.popen = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _BOOT, json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=sandbox.folder, env=environment, start_new_session=True, close_fds=True)
        self.buffer = b""

    def send(self, **message):
        try:
            self.popen.stdin.write(wire.dumps(message))
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            pass                                        # receive() reports how it ended

    def receive(self, deadline):
        """The next message, waiting until ``deadline`` (``time.monotonic()``)."""
        out = self.popen.stdout.fileno()
        while b"\n" not in self.buffer:
            if len(self.buffer) > wire.MAX_MESSAGE_BYTES:
                raise PartEnded("error", f"your code sent more than "
                                f"{wire.MAX_MESSAGE_BYTES // 2 ** 20} MiB for one answer")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(out, 1 << 20)
            if not chunk:
                code = self.popen.wait()
                raise PartEnded("exited", f"the process ended (exit code {code}) before the "
                                          "checks finished: does your code call exit() or "
                                          "os._exit()?")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            return wire.loads(line)
        except wire.WireError as error:
            raise PartEnded("error", f"the grader could not read your code's answer "
                                     f"({error})") from None

    def kill(self):
        try:
            os.killpg(self.popen.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.kill()
        self.popen.wait()
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()
            except OSError:
                pass


def run_part(sandbox, check, time_limit_s, given=None):
    """Run ``check(submission)`` against a fresh process of ``sandbox``; ``given`` maps the
    names of functions the part is given to the grader's own. Raises ``PartEnded`` or
    ``TimeoutError`` when the process ends the part, or what ``check`` raises."""
    given = dict(given or {})
    process = _Process(sandbox, given)
    try:
        if "loaded" not in process.receive(time.monotonic() + START_UP_S):
            raise PartEnded("error", "the grader's process did not start")
        deadline = time.monotonic() + time_limit_s
        reply = process.receive(deadline)
        if "raised" in reply:
            raise PartEnded(*reply["raised"])
        return check(Submission(process, deadline, given))
    finally:
        process.send(stop=True)
        process.kill()


def protect_this_process():
    """Make this process's memory, environment and files unreadable through ``/proc`` to a
    process of the same user (Linux), so that a submission cannot read the grader's."""
    if sys.platform.startswith("linux"):
        import ctypes
        pr_set_dumpable = 4
        ctypes.CDLL(None).prctl(pr_set_dumpable, 0, 0, 0, 0)


__all__ = ["ALWAYS_ABSENT", "PartEnded", "Sandbox", "Submission", "protect_this_process",
           "run_part"]
