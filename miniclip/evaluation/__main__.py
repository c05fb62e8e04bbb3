"""``python -m miniclip.evaluation``: the evaluation command line (``cli.py``)."""
import sys

from .cli import main

sys.exit(main())
