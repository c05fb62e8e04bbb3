"""Grading an assignment: ``python -m miniclip.grade ASSIGNMENT SUBMISSION`` (``cli.py``).

An assignment is a folder (the course's are in the repository's ``assignments/``)::

    rubric.json        the title, the submitted file's name, the library ops switched off
                       while grading, and the parts: points, time limit, check function
    handout.md         the handout: what to write, and written questions
    test_<name>.py     public tests, handed out (``pytest`` runs them, e.g. GitHub Classroom)
    solution.py        the reference solution; its solution regions (``solutions.py``) cut
                       to stubs give the starter file, so the two never drift apart
    hidden_tests.py    one check function per part, ``check(submission, check)``

Only the first three (and the starter) are handed out: ``write_handout``.

**Each part runs in a worker process of its own** (forked where the platform can, so
NumPy and miniclip are already imported), under the part's time limit. A submission that
raises, loops forever or exits the interpreter then costs that part only, and the report
says which happened. The worker imports the submission afresh, so code that runs at import
is isolated as well.

**The library's answers are switched off.** Before the submission is imported, the worker
replaces every op the rubric lists under ``"disable"`` (``"module:attribute.path"``) with a
stub that raises ``LibraryDisabled``: a submission that calls miniclip's own layer norm, or
runs miniclip's autograd to get its gradients, scores nothing on that part. The checks
compare against finite differences of forward passes, or reference code, that the hidden
tests own, never against miniclip's backward passes.

**One mistake costs one part.** A part may list under ``"given"`` functions of earlier
parts that it builds on; the worker replaces the submission's versions with the reference
solution's for that part, so a wrong ``col2im`` fails the col2im part and not every part
that uses it.
"""
import dataclasses
import importlib
import importlib.util
import io
import json
import multiprocessing
import pathlib
import sys
import traceback

from .checks import Check, ExerciseError
from .solutions import student_code

#: What the starter file's stubs say: the part to write.
STARTER_STUB = "{label}: not written yet"


class LibraryDisabled(RuntimeError):
    """The submission called a library op that the assignment asks it to write."""


@dataclasses.dataclass(frozen=True)
class Part:
    """One graded part: ``check`` names the function of ``hidden_tests.py`` that grades it."""
    id: str
    title: str
    points: float
    check: str
    time_limit_s: float
    given: tuple = ()


@dataclasses.dataclass(frozen=True)
class Assignment:
    folder: pathlib.Path
    name: str
    title: str
    submission: str              # the file students hand in, e.g. "layer_norm.py"
    disable: tuple
    parts: tuple

    @property
    def points(self):
        return sum(part.points for part in self.parts)


def load(folder):
    """The ``Assignment`` described by ``folder/rubric.json``."""
    folder = pathlib.Path(folder).resolve()
    rubric = json.loads((folder / "rubric.json").read_text("utf-8"))
    parts = tuple(Part(id=p["id"], title=p["title"], points=p["points"], check=p["check"],
                       time_limit_s=p["time_limit_s"], given=tuple(p.get("given", ())))
                  for p in rubric["parts"])
    return Assignment(folder=folder, name=folder.name, title=rubric["title"],
                      submission=rubric["submission"], disable=tuple(rubric["disable"]),
                      parts=parts)


def find(name_or_path, search=("assignments",)):
    """An assignment folder given as a path, or as a name looked up in the ``search`` folders
    (the current directory's ``assignments/`` by default)."""
    path = pathlib.Path(name_or_path)
    candidates = [path] + [pathlib.Path(folder) / name_or_path for folder in search]
    for candidate in candidates:
        if (candidate / "rubric.json").is_file():
            return load(candidate)
    raise FileNotFoundError(f"no assignment {name_or_path!r}: looked for rubric.json in "
                            + ", ".join(str(c) for c in candidates))


def starter_code(assignment):
    """The starter file: the reference solution with its solution regions cut to stubs."""
    solution = assignment.folder / "solution.py"
    return student_code(solution.read_text("utf-8"), str(solution), STARTER_STUB) + "\n"


def write_handout(assignment, out_dir):
    """Write what students get into ``out_dir``: the handout, the starter file (named as the
    submission) and the public tests. Returns the paths written."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    public_tests = f"test_{pathlib.Path(assignment.submission).stem}.py"
    written = []
    for name in ("handout.md", public_tests):
        written.append(out_dir / name)
        written[-1].write_text((assignment.folder / name).read_text("utf-8"), "utf-8")
    written.append(out_dir / assignment.submission)
    written[-1].write_text(starter_code(assignment), "utf-8")
    return written


@dataclasses.dataclass(frozen=True)
class Result:
    """How one part went: ``status`` is one of passed, failed, not done, error, disabled,
    timeout, exited; ``feedback`` says what was checked and what went wrong."""
    part: Part
    status: str
    feedback: str

    @property
    def score(self):
        return self.part.points if self.status == "passed" else 0


def grade(assignment, submission, time_limit_s=None):
    """Grade the file ``submission``: a ``Result`` per part, each part run in its own worker
    under its time limit (``time_limit_s``, if given, replaces every part's)."""
    submission = pathlib.Path(submission).resolve()
    if not submission.is_file():
        return [Result(part, "error", f"no file {submission.name} was found (submit "
                                      f"{assignment.submission})")
                for part in assignment.parts]
    return [_run_in_worker(assignment, submission, part,
                           part.time_limit_s if time_limit_s is None else time_limit_s)
            for part in assignment.parts]


def _context():
    """Fork where the platform has it (a worker starts in milliseconds), else spawn."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _run_in_worker(assignment, submission, part, time_limit_s):
    context = _context()
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(target=_grade_part, args=(assignment, submission, part, send),
                             daemon=True)
    worker.start()
    send.close()
    finished = receive.poll(time_limit_s)          # True too when the worker ended early
    try:
        outcome = receive.recv() if finished else None
    except EOFError:                               # it ended without sending its outcome
        outcome = None
    worker.join(1.0 if finished else 0.0)
    if worker.is_alive():
        worker.kill()
        worker.join()
    receive.close()
    if outcome is not None:
        return Result(part, *outcome)
    if not finished:
        return Result(part, "timeout", f"did not finish within {time_limit_s:g} s (an "
                                       "endless loop, or far too slow for these small inputs)")
    return Result(part, "exited", f"the process ended (exit code {worker.exitcode}) before "
                                  "the checks finished: does your code call exit() or os._exit()?")


def _grade_part(assignment, submission, part, send):
    """The worker: import the submission with the library's answers switched off, run the
    part's check, and send back ``(status, feedback)``."""
    sys.stdout = sys.stderr = io.StringIO()         # the submission's prints stay out of the report
    try:
        hidden = _import_file(assignment.folder / "hidden_tests.py", "hidden_tests")
        reference = _import_file(assignment.folder / "solution.py", "reference_solution")
        for target in assignment.disable:
            _disable(target, assignment.name)
        module = _import_file(submission, pathlib.Path(assignment.submission).stem)
        for name in part.given:
            setattr(module, name, getattr(reference, name))
        check = Check()
        getattr(hidden, part.check)(module, check)
        outcome = ("passed", f"passed ({check.count} check{'s' * (check.count != 1)})")
    except NotImplementedError as error:
        outcome = ("not done", f"not attempted: the code still raises NotImplementedError "
                               f"({error})")
    except ExerciseError as error:
        outcome = ("failed", str(error))
    except LibraryDisabled as error:
        outcome = ("disabled", f"{error}{_where(error, submission)}")
    except SystemExit as error:
        outcome = ("exited", f"your code called exit({error.code}){_where(error, submission)}")
    except BaseException as error:                  # anything else the submission raises
        outcome = ("error", f"your code raised {type(error).__name__}: {error}"
                            f"{_where(error, submission)}")
    send.send(outcome)
    send.close()


def _import_file(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _disable(target, assignment_name):
    """Replace ``module:attribute.path`` by a stub that raises ``LibraryDisabled``."""
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *owners, attribute = path.split(".")
    for name in owners:
        owner = getattr(owner, name)
    getattr(owner, attribute)                       # a stale rubric fails here, not silently

    def disabled(*args, **kwargs):
        raise LibraryDisabled(f"miniclip's {module_name}.{path} is switched off while grading "
                              f"assignment {assignment_name}: this part must be your own code")
    setattr(owner, attribute, disabled)


def _where(error, submission):
    """' (line N of FILE)': the deepest line of the submission in the error's traceback."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if pathlib.Path(frame.filename).resolve() == submission]
    return f" (line {lines[-1]} of {submission.name})" if lines else ""


def report(assignment, results):
    """The results as text: one line per part, its score and feedback, then the total."""
    width = max(len(part.title) for part in assignment.parts)
    lines = [f"{assignment.title}"]
    for result in results:
        part = result.part
        lines.append(f"  {part.id:4s} {part.title:{width}s}  {result.score:g} / {part.points:g}"
                     f"  {result.feedback}")
    total = sum(result.score for result in results)
    lines.append(f"score: {total:g} / {assignment.points:g}")
    return "\n".join(lines)


def gradescope_results(assignment, results):
    """The results in Gradescope's ``results.json`` format: a test per part."""
    return {
        "score": sum(result.score for result in results),
        "output": f"{assignment.title}: {len(results)} parts graded",
        "visibility": "visible",
        "tests": [{"name": f"{r.part.id} {r.part.title}", "score": r.score,
                   "max_score": r.part.points, "status": "passed" if r.score else "failed",
                   "output": r.feedback, "visibility": "visible"} for r in results],
    }
