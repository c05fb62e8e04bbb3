"""A Gradescope autograder for an assignment, as the zip Gradescope asks for.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build
its image, then ``run_autograder`` for every submission, which finds the student's files
in ``/autograder/submission`` and must leave ``/autograder/results/results.json``. Ours
runs ``python -m miniclip.grade`` on the submitted file with ``--gradescope``, so the
per-part scores and feedback are exactly those the command prints.

The zip carries the student edition of miniclip (the grader needs none of the library's
answers), the assignment's rubric and hidden tests (no solution: the parts that build on
earlier ones are given the hidden tests' references) and the runtime requirements.
``run_autograder`` makes the source readable by root alone; the grader, run as root
there, runs each part as the user ``nobody`` in a chroot of its own folder (``worker``). ``run_autograder`` reads ``AUTOGRADER_ROOT`` (default ``/autograder``) and
``PYTHON`` (default ``python3``), so the same script runs locally against a temporary
folder (``tests/test_grade.py`` does).
"""
import pathlib
import tempfile
import zipfile

from .solutions import export_student_edition

#: The files of an assignment's folder that the autograder needs (not its solution).
AUTOGRADER_FILES = ("rubric.json", "hidden_tests.py")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder: install miniclip's requirements.
set -euo pipefail
if ! command -v pip3 >/dev/null; then apt-get update && apt-get install -y python3 python3-pip; fi
python3 -m pip install -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: grade it, and write results/results.json.
root="${{AUTOGRADER_ROOT:-/autograder}}"
export PYTHONPATH="$root/source${{PYTHONPATH:+:$PYTHONPATH}}"
chmod -R go-rwx "$root/source"      # the hidden tests: for the grader's eyes only
mkdir -p "$root/results"
exec "${{PYTHON:-python3}}" -m miniclip.grade "$root/source/assignment/{name}" \\
    "$root/submission/{submission}" --gradescope "$root/results/results.json"
"""


def build_zip(assignment, out_zip):
    """Write the Gradescope autograder of ``assignment`` to ``out_zip``; return its path.

    Needs a checkout of the repository (for ``requirements.txt`` next to the package)."""
    package = pathlib.Path(__file__).resolve().parent.parent
    requirements = package.parent / "requirements.txt"
    if not requirements.is_file():
        raise FileNotFoundError(f"{requirements} not found: build autograders from a checkout "
                                "of the miniclip repository")
    out_zip = pathlib.Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER.format(
                name=assignment.name, submission=assignment.submission))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16        # executable, as Gradescope runs them
            archive.writestr(info, text)
        archive.write(requirements, "requirements.txt")
        for name in AUTOGRADER_FILES:
            archive.write(assignment.folder / name, f"assignment/{assignment.name}/{name}")
        with tempfile.TemporaryDirectory() as student:
            export_student_edition(student)
            edition = pathlib.Path(student) / "miniclip"
            for path in sorted(edition.rglob("*")):
                if path.is_file():
                    archive.write(path, f"miniclip/{path.relative_to(edition).as_posix()}")
    return out_zip
