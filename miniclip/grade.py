"""``python -m miniclip.grade``: the assignments' grader (``miniclip/grading/cli.py``)."""
import sys

from .grading.cli import main

if __name__ == "__main__":
    sys.exit(main())
