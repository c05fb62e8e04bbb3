"""Grading an assignment: ``python -m miniclip.grade ASSIGNMENT SUBMISSION`` (``cli.py``).

An assignment is a folder (the course's are in the repository's ``assignments/``)::

    rubric.json        the title, the submitted file's name, what the grading edition of
                       miniclip leaves out (``"absent"``), and the parts: points, time
                       limit, check function
    handout.md         the handout: what to write, and written questions
    test_<name>.py     public tests, handed out (``pytest`` runs them, e.g. GitHub Classroom)
    solution.py        the reference solution; its solution regions (``solutions.py``) cut
                       to stubs give the starter file, so the two never drift apart
    hidden_tests.py    one check function per part, ``check(submission, check)``, and
                       ``GIVEN``, its references of the functions parts are given

Only the first three (and the starter) are handed out: ``write_handout``. The Gradescope
zip (``autograder``) holds the hidden tests but no solution.

**Each part runs in a fresh process that only the submission's code can answer**
(``sandbox``, ``worker``): ``sys.executable`` started in a folder holding the *grading
edition* of miniclip and the submitted file. In that edition the functions the rubric lists
under ``"absent"`` (``"module:pattern"``: the assignment's ops, and for the backward
passes every ``backward`` of the library and its autograd engine) are cut, as are the
finite differences; they are absent, not switched off, so no reload or import trick
brings them back. The process never holds a hidden test, a reference, an expected value
or a score: the hidden tests run here and call the submission's functions over a pipe.
A submission that raises, loops past the part's time limit or exits costs that part only,
and the report says which happened.

**The hidden tests tell a derivation from a measurement.** Gradients are compared to
float64 precision with exact complex-step derivatives (``exact``), which finite
differences cannot reach, and on inputs large enough that measuring every element runs
far past the time limit.

**One mistake costs one part.** A part may list under ``"given"`` functions of earlier
parts that it builds on; the submission's versions are replaced by calls back to the
hidden tests' ``GIVEN`` references, so a wrong ``col2im`` fails the col2im part and not
every part that uses it.
"""
import dataclasses
import importlib.util
import json
import pathlib

from . import sandbox
from .checks import Check, ExerciseError
from .solutions import student_code

#: What the starter file's stubs say: the part to write.
STARTER_STUB = "{label}: not written yet"


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
    absent: tuple                # what the grading edition of miniclip cuts
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
                      submission=rubric["submission"], absent=tuple(rubric["absent"]),
                      parts=parts)


def find(name_or_path, search=("assignments",)):
    """An assignment folder given as a path, or as a name looked up in the ``search`` folders
    (the current directory's ``assignments/`` and the one beside the installed package, by
    default)."""
    path = pathlib.Path(name_or_path)
    beside_package = pathlib.Path(__file__).resolve().parents[2] / "assignments"
    candidates = [path] + [pathlib.Path(folder) / name_or_path
                           for folder in (*search, beside_package)]
    for candidate in candidates:
        if (candidate / "rubric.json").is_file():
            return load(candidate)
    raise FileNotFoundError(f"no assignment {name_or_path!r}: no rubric.json in "
                            + ", ".join(str(c) for c in dict.fromkeys(candidates))
                            + "; give the path of the assignment's folder")


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
    """How one part went: ``status`` is one of passed, failed, not done, error, library
    (the submission called an op the grading edition leaves out), timeout, exited;
    ``feedback`` says what was checked and what went wrong."""
    part: Part
    status: str
    feedback: str

    @property
    def score(self):
        return self.part.points if self.status == "passed" else 0


def grade(assignment, submission, time_limit_s=None):
    """Grade the file ``submission``: a ``Result`` per part, each part run in a fresh process
    under its time limit (``time_limit_s``, if given, replaces every part's)."""
    submission = pathlib.Path(submission).resolve()
    if not submission.is_file():
        return [Result(part, "error", f"no file {submission.name} was found (submit "
                                      f"{assignment.submission})")
                for part in assignment.parts]
    sandbox.protect_this_process()
    hidden = _import_file(assignment.folder / "hidden_tests.py")
    with sandbox.Sandbox(submission, assignment.absent) as box:
        return [_grade_part(box, hidden, part,
                            part.time_limit_s if time_limit_s is None else time_limit_s)
                for part in assignment.parts]


def _grade_part(box, hidden, part, time_limit_s):
    check = Check()
    given = {name: hidden.GIVEN[name] for name in part.given}
    try:
        sandbox.run_part(box, lambda submission: getattr(hidden, part.check)(submission, check),
                         time_limit_s, given)
    except sandbox.PartEnded as ended:
        return Result(part, ended.status, ended.feedback)
    except TimeoutError:
        return Result(part, "timeout", f"did not finish within {time_limit_s:g} s (an endless "
                                       "loop, or far too slow: the graded inputs include large "
                                       "ones)")
    except ExerciseError as error:
        return Result(part, "failed", str(error))
    return Result(part, "passed", f"passed ({check.count} check{'s' * (check.count != 1)})")


def _import_file(path):
    spec = importlib.util.spec_from_file_location(f"hidden_tests_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
