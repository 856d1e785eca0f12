"""``python -m tools.colab_sim``: see :mod:`tools.colab_sim.cli`."""

import sys

from .cli import main

sys.exit(main())
