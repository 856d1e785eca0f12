"""``python -m tools.run_all``: see :mod:`tools.run_all.cli`."""

import sys

from .cli import main

sys.exit(main())
