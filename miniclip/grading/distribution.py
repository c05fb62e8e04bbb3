"""The student distribution: what an instructor hands out, with no answer in it
(``python -m miniclip.grade export-student OUT_DIR``).

The repository is the instructor's and self-learner's edition, with every solution. The
student distribution, built from a checkout, holds:

    miniclip/              the student edition of the package (``solutions``)
    notebooks/student/     the notebooks with each exercise a stub
    assignments/NAME/      each assignment's handout, starter file and public tests
    tutorials/, docs/      the tutorials and the syllabus (not the rendered solution pages)
    README.md, pyproject.toml, requirements*.txt
                           so that ``pip install -e ".[course]"`` works there as here

and no solution file, solution region, hidden test, notebook source or solution notebook.
"""
import pathlib
import shutil

from . import assignment as assignments
from .solutions import export_student_edition, released

ROOT_FILES = ("README.md", "pyproject.toml", "requirements.txt", "requirements-dev.txt",
              "LICENSE", "CHANGELOG.md")
STUDENT_DOCS = ("syllabus.md", "reference.md")
ASSIGNMENTS_README = """\
# Assignments

Each folder holds an assignment's handout (`handout.md`), the file you complete (its
functions raise `NotImplementedError` until you write them) and its public tests. Run the
tests next to your file, e.g. `cd linear_softmax && python -m pytest`, and grade yourself
on them with `python -m pytest -v`; the graded tests (on Gradescope) check more cases.
"""


def checkout():
    """The repository the installed package belongs to; FileNotFoundError if it is not a
    checkout (a student distribution cannot export another)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    if not (root / "assignments").is_dir() or not (root / "notebooks" / "student").is_dir():
        raise FileNotFoundError(f"{root} is not a checkout of the miniclip repository with "
                                "its assignments: export from the instructor's clone")
    return root


def export_student_distribution(out_dir, release=()):
    """Write the student distribution into ``out_dir`` (which must not exist yet, or be
    empty); return its path. ``release`` names assignments already due: the package keeps
    their answers, and their handouts are left out."""
    root, out = checkout(), pathlib.Path(out_dir)
    unknown = set(release) - {p.parent.name for p in (root / "assignments").glob("*/rubric.json")}
    if unknown:
        raise FileNotFoundError(f"no assignment {', '.join(sorted(unknown))} in "
                                f"{root / 'assignments'}: release one of its folders' names")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: export into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    export_student_edition(out, keep=released(release))
    for name in ROOT_FILES:
        if (root / name).is_file():
            shutil.copyfile(root / name, out / name)
    (out / "notebooks" / "student").mkdir(parents=True)
    for notebook in sorted((root / "notebooks" / "student").glob("*.ipynb")):
        shutil.copyfile(notebook, out / "notebooks" / "student" / notebook.name)
    shutil.copyfile(root / "notebooks" / "README.md", out / "notebooks" / "README.md")
    for rubric in sorted((root / "assignments").glob("*/rubric.json")):
        work = assignments.load(rubric.parent)
        if work.name not in release:
            assignments.write_handout(work, out / "assignments" / work.name)
    (out / "assignments" / "README.md").write_text(ASSIGNMENTS_README, "utf-8")
    shutil.copytree(root / "tutorials", out / "tutorials")
    (out / "docs").mkdir()
    for name in STUDENT_DOCS:
        if (root / "docs" / name).is_file():
            shutil.copyfile(root / "docs" / name, out / "docs" / name)
    return out
