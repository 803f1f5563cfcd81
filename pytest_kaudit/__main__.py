"""``python -m pytest_kaudit``: the same as the ``kaudit`` console script."""

from __future__ import annotations

import sys

from pytest_kaudit.cli import main

if __name__ == "__main__":
    sys.exit(main())
