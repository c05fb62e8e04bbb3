"""The process that runs one part of one submission (started by ``sandbox``; not a program
to run by hand).

It runs from the *grading edition* of miniclip (the student edition with the assignment's
ops, the autograd engine and the finite differences cut, ``solutions``), in a folder that
holds that edition and the submitted file and nothing else. Before the submission is
imported it confines itself:

* always: no new processes (``RLIMIT_NPROC`` 0), no file written (``RLIMIT_FSIZE`` 0), a
  memory cap, its output thrown away;
* when started as root (Gradescope's autograder, a container): a network namespace of its
  own with no interface up, ``chroot`` into its folder (the rest of the disk, ``/proc``
  and the grader's files are gone) and the user ``nobody``.

Then it imports the submission, replaces the functions a part is given by calls back to
the grader, and answers the grader's calls (``wire`` messages on stdin and stdout) until
told to stop. It never sees a hidden test, an expected value or a score: the grader
compares what comes back.
"""
import ctypes
import importlib.util
import os
import pathlib
import resource
import signal
import sys
import traceback

from . import wire

#: Modules loaded before the chroot, where a submission can no longer load modules from
#: outside its folder; miniclip's too when the submission names it.
PRELOADED = ("collections", "copy", "dataclasses", "fnmatch", "functools", "glob", "heapq",
             "itertools", "math", "numbers", "operator", "random", "re", "string", "typing",
             "linecache", "tokenize", "traceback", "numpy.linalg", "numpy.fft", "numpy.random")
PRELOADED_MINICLIP = ("miniclip", "miniclip.tokenizer.bpe", "miniclip.training.loss")
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534


class _Channel:
    """The messages to and from the grader, on file descriptors the submission never gets
    as sys.stdin/sys.stdout."""

    def __init__(self):
        self.incoming = os.fdopen(os.dup(0), "rb")
        self.outgoing = os.fdopen(os.dup(1), "wb")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sys.stdin = open(os.devnull)                     # noqa: SIM115 (lives as long as us)
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115

    def send(self, **message):
        self.outgoing.write(wire.dumps(message))
        self.outgoing.flush()

    def receive(self):
        line = self.incoming.readline(wire.MAX_MESSAGE_BYTES + 1)
        if not line:
            os._exit(0)                                  # the grader is gone
        return wire.loads(line)


def _confine(folder, memory_bytes):
    """Each step where the platform and the process's privileges allow it: a container
    without CAP_SYS_ADMIN has no network namespace to give, macOS no RLIMIT_AS."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare(CLONE_NEWNET)
        steps = (lambda: os.chroot(folder), lambda: os.chdir("/"), lambda: os.setgroups([]),
                 lambda: os.setresgid(NOBODY, NOBODY, NOBODY),
                 lambda: os.setresuid(NOBODY, NOBODY, NOBODY))
        for step in steps:
            try:
                step()
            except OSError:
                pass
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write fails instead of killing us
    for limit, value in ((resource.RLIMIT_NPROC, 0), (resource.RLIMIT_FSIZE, 0),
                         (resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, memory_bytes)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass


def _outcome(error, submission, edition):
    """``(status, feedback)`` for an exception the submission raised."""
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if frame.filename == str(submission)]
    where = f" (line {lines[-1]} of {submission.name})" if lines else ""
    deepest = frames[-1].filename if frames else ""
    if isinstance(error, NotImplementedError) and deepest.startswith(str(edition)):
        return ("library", f"your code called miniclip's {str(error).split(': left out')[0]}, "
                           f"which is left out while grading: this part must be your own "
                           f"code{where}")
    if isinstance(error, NotImplementedError):
        return ("not done", f"not attempted: the code still raises NotImplementedError "
                            f"({error})")
    if isinstance(error, SystemExit):
        return ("exited", f"your code called exit({error.code}){where}")
    if isinstance(error, MemoryError):
        return ("error", f"your code ran out of memory (MemoryError){where}")
    return ("error", f"your code raised {type(error).__name__}: {error}{where}")


def _given(channel, name):
    """A function that asks the grader to run its own ``name`` (a part given to this one)."""
    def call_grader(*args, **kwargs):
        channel.send(callback=name, args=list(args), kwargs=kwargs)
        reply = channel.receive()
        if "raised" in reply:
            raise RuntimeError(f"the grader's {name} failed: {reply['raised']}")
        return reply["returned"]
    call_grader.__name__ = name
    return call_grader


def _serve(channel, module, submission, edition):
    while True:
        request = channel.receive()
        if "stop" in request:
            return
        name, args, kwargs = request["call"], request["args"], request["kwargs"]
        before = [wire.dumps({"value": arg}) for arg in args]
        try:
            function = getattr(module, name, None)
            if not callable(function):
                channel.send(raised=("error", f"{submission.name} has no function {name}"))
                continue
            returned = function(*args, **kwargs)
            # Arguments the call changed go back, so in-place rules can be checked.
            changed = {str(i): arg for i, (arg, old) in enumerate(zip(args, before))
                       if wire.dumps({"value": arg}) != old}
            channel.send(returned=returned, changed=changed)
        except wire.WireError as error:
            channel.send(raised=("error", f"{name} returned {error}"))
        except BaseException as error:                 # the submission's, whatever it is
            channel.send(raised=_outcome(error, submission, edition))


def main(config):
    """Run as ``python -I -B -c`` by ``sandbox._start``, with ``config`` the folder, the
    submission's name, the functions given and the memory cap."""
    channel = _Channel()
    folder = pathlib.Path(config["folder"])
    edition, submission = folder / "edition", folder / "submission" / config["file"]
    mentions_miniclip = "miniclip" in submission.read_text("utf-8", errors="replace")
    for name in PRELOADED + PRELOADED_MINICLIP * mentions_miniclip:
        importlib.import_module(name)
    wire.loads(wire.dumps({"check": [(1.0,), {"a": 1}]}))      # loads what the codec needs
    traceback.format_exception(ValueError, ValueError(), None)
    _confine(str(folder), config["memory_bytes"])
    channel.send(loaded=True)
    try:
        spec = importlib.util.spec_from_file_location(submission.stem, submission)
        module = importlib.util.module_from_spec(spec)
        sys.modules[submission.stem] = module
        spec.loader.exec_module(module)
    except BaseException as error:
        channel.send(raised=_outcome(error, submission, edition))
        return
    for name in config["given"]:
        setattr(module, name, _given(channel, name))
    channel.send(ready=True)
    _serve(channel, module, submission, edition)
