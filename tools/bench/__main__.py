"""``python -m tools.bench``: see :mod:`tools.bench.cli`."""

import sys

from .cli import main

sys.exit(main())
