"""How long each wait of the UI check may take, the deadline of the whole check, and what a failure says.

Every wait takes the smaller of its own bound and the time the whole check has left (:class:`Deadline`).
"""

from __future__ import annotations

import time

# Bounds, in seconds. A lesson on the tiny profile runs in 5 to 25 s here; a playground picture in about one.
LAB_START = 60
STEP = 30  # any one click, page load or element to appear
KERNEL_START = 90  # opening a notebook until its kernel is idle (about 20 s here while the machine was busy)
NOTEBOOK = 300  # one notebook's Run All (05, the longest, took 20 s on an idle machine, over 180 s on a busy one)
PICTURE = 60  # Generate to picture
TOTAL = 900  # the whole check: about 2 minutes on an idle 2-core machine, over 10 while others loaded it 6x


class CheckFailed(RuntimeError):
    """What a learner would have seen go wrong, in words."""


class Deadline:
    """The time left for the whole check; every wait takes the smaller of its own bound and this."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self, bound: float) -> float:
        left = min(bound, self.end - time.monotonic())
        if left <= 0:
            raise CheckFailed("the check ran out of time (--timeout)")
        return left

    def ms(self, bound: float) -> float:
        return self.left(bound) * 1000
