"""``python -m miniclip.grade``: grade a submission, and prepare what an instructor hands out.

    python -m miniclip.grade ASSIGNMENT SUBMISSION.py [--time-limit S] [--gradescope RESULTS.json]
    python -m miniclip.grade handout ASSIGNMENT OUT_DIR       the handout, starter, public tests
    python -m miniclip.grade autograder ASSIGNMENT OUT.zip    a Gradescope autograder
    python -m miniclip.grade export-student OUT_DIR           the student distribution

ASSIGNMENT is an assignment folder, or a name in ``./assignments/`` or in the
``assignments/`` beside the installed package (so it works from any directory of a
clone). Grading prints a line per part (score and feedback) and the total;
``--gradescope`` also writes the results in Gradescope's ``results.json`` format. The exit
status is 0 whenever the submission was graded, whatever its score; 2, with one line on
stderr, for an assignment or a file that is not there.
"""
import argparse
import json
import pathlib
import sys

from . import assignment as assignments
from .autograder import build_zip
from .distribution import export_student_distribution

COMMANDS = ("handout", "autograder", "export-student")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in COMMANDS:
            return _command(argv)
        return _grade(argv)
    except FileNotFoundError as error:
        print(f"python -m miniclip.grade: {error}", file=sys.stderr)
        return 2


def _grade(argv):
    parser = argparse.ArgumentParser(prog="python -m miniclip.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser = argparse.ArgumentParser(prog=f"python -m miniclip.grade {command}")
    if command == "export-student":
        parser.add_argument("out_dir")
        args = parser.parse_args(rest)
        print(f"wrote the student distribution to {export_student_distribution(args.out_dir)}")
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
