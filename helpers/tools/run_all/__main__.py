"""``python -m helpers.tools.run_all``: see :mod:`helpers.tools.run_all.cli`."""

import sys

from .cli import main

sys.exit(main())
