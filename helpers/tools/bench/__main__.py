"""``python -m helpers.tools.bench``: see :mod:`helpers.tools.bench.cli`."""

import sys

from .cli import main

sys.exit(main())
