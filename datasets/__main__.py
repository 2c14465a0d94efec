"""Entry point of ``python -m datasets``."""

from __future__ import annotations

import sys

from datasets.cli import main

if __name__ == "__main__":
    sys.exit(main())
