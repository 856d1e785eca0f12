"""``python -m tools.generate``: see :mod:`tools.generate.cli`."""

import sys

from .cli import main

sys.exit(main())
