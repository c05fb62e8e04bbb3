"""``python -m miniclip.grade``: grade a submission, and prepare what an instructor hands out.

    python -m miniclip.grade ASSIGNMENT SUBMISSION.py [--time-limit S] [--gradescope RESULTS.json]
    python -m miniclip.grade handout ASSIGNMENT OUT_DIR       the handout, starter, public tests
    python -m miniclip.grade autograder ASSIGNMENT OUT.zip    a Gradescope autograder
    python -m miniclip.grade export-student OUT_DIR [--release ASSIGNMENT ...]
                                                              the student distribution

ASSIGNMENT is an assignment folder, or a name in ``./assignments/`` or in the
``assignments/`` beside the installed package (so it works from any directory of a
clone). Grading prints a line per part (score and feedback) and the total;
``--gradescope`` also writes the results in Gradescope's ``results.json`` format. The exit
status is 0 whenever the submission was graded, whatever its score; an assignment or a file
that is not there ends with one line and exit code 2, as every error of the programs'
policy (``miniclip/system/program.py``).
"""
import argparse
import json
import pathlib
import sys

from ..system.program import run_program
from . import assignment as assignments
from .autograder import build_zip
from .distribution import export_student_distribution

PROG = "python -m miniclip.grade"
COMMANDS = ("handout", "autograder", "export-student")


def main(argv=None):
    """Run the command line ``argv``; returns the exit code (``miniclip/system/program.py``:
    2 for a problem the message says how to fix, 1 for another failure, 130 on Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_program(PROG, lambda: _run(argv), debug="--debug" in argv,
                       input_errors=(FileExistsError,))


def _run(argv):
    if argv and argv[0] in COMMANDS:
        return _command(argv)
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("assignment", help="an assignment folder, or its name in ./assignments")
    parser.add_argument("submission", help="the student's file")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="seconds allowed for each part (default: the rubric's)")
    parser.add_argument("--gradescope", metavar="RESULTS_JSON",
                        help="also write the results there in Gradescope's format")
    args = parser.parse_args(argv)
    assignment = assignments.find(args.assignment)
    if not pathlib.Path(args.submission).is_file():
        raise FileNotFoundError(f"no file {args.submission}: give the path of your "
                                f"{assignment.submission}")
    results = assignments.grade(assignment, args.submission, args.time_limit)
    print(assignments.report(assignment, results))
    if args.gradescope:
        path = pathlib.Path(args.gradescope)
        path.write_text(json.dumps(assignments.gradescope_results(assignment, results),
                                   indent=2) + "\n", "utf-8")
    return 0


def _command(argv):
    command, *rest = argv
    parser = argparse.ArgumentParser(prog=f"{PROG} {command}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    if command == "export-student":
        parser.add_argument("out_dir")
        parser.add_argument("--release", nargs="+", default=[], metavar="ASSIGNMENT",
                            help="assignments already due: the package keeps their answers")
        args = parser.parse_args(rest)
        out = export_student_distribution(args.out_dir, args.release)
        print(f"wrote the student distribution to {out}")
        return 0
    parser.add_argument("assignment")
    parser.add_argument("out", help="a folder (handout) or a .zip file (autograder)")
    args = parser.parse_args(rest)
    assignment = assignments.find(args.assignment)
    if command == "handout":
        for path in assignments.write_handout(assignment, args.out):
            print(f"wrote {path}")
    else:
        print(f"wrote {build_zip(assignment, args.out)}")
    return 0
