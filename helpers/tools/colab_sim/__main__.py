"""``python -m helpers.tools.colab_sim``: see :mod:`helpers.tools.colab_sim.cli`."""

import sys

from .cli import main

sys.exit(main())
