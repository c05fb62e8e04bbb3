"""``python -m miniclip.train``: train a CLIP from scratch (``miniclip/training/cli.py``)."""
import sys

from .training.cli import main

if __name__ == "__main__":
    sys.exit(main())
