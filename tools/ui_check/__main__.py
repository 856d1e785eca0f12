"""``python -m tools.ui_check``: see :mod:`tools.ui_check.cli`."""

import sys

from .cli import main

sys.exit(main())
