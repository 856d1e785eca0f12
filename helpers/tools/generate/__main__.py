"""``python -m helpers.tools.generate``: see :mod:`helpers.tools.generate.cli`."""

import sys

from .cli import main

sys.exit(main())
