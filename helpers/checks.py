"""The one range check of the values a learner types: counts, picture sizes and scales.

Every public function that takes a count (``batch_size``, ``num_inference_steps``, ``rows``, ``reps``, run-all's
``--jobs``) checks it here, so a bad value reads the same everywhere: the parameter, the value, and one that works.
``python -m tools.run_all`` runs the same checks on its parameters before any kernel starts.

Example:
    >>> check_count("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1, got batch_size=0; e.g. batch_size=1
"""

from __future__ import annotations

import math

__all__ = ["check_count", "check_number", "check_size"]

# The VAE of Stable Diffusion shrinks a picture 8 times on each side, so a picture's sides are multiples of 8.
SIZE_STEP = 8


def _limits(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}"
    return f">= {minimum}" if maximum is None else f"<= {maximum}"


def _nearest(value: object, minimum: float | None, maximum: float | None, integer: bool) -> float:
    """A value that would pass: the given one made a number and moved into the range, else the minimum."""
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:  # text that is no number
        number = math.nan
    if not math.isfinite(number):
        number = minimum if minimum is not None else maximum if maximum is not None else 0
    number = max(number, minimum) if minimum is not None else number
    number = min(number, maximum) if maximum is not None else number
    return math.ceil(number) if integer else number


def check_count(name: str, value: object, minimum: int = 1, maximum: int | None = None, *, about: str = "") -> int:
    """Return ``value`` if it is an integer from ``minimum`` to ``maximum``; else raise a ``ValueError`` saying so.

    ``True`` is not a count, nor is ``2.0``: a float where an integer belongs is usually a slip (``2.5`` steps).

    Args:
        name: the parameter, as the caller wrote it (``"batch_size"``, ``"--jobs"``).
        value: what was given.
        minimum, maximum: the range, both included; ``maximum=None`` has no upper bound.
        about: a few words on what the count is, put in brackets after the range (``"the number of images"``).

    Raises:
        ValueError: naming the parameter, the value and a value that would work.

    Example:
        >>> check_count("seed", 3, minimum=0)
        3
        >>> check_count("rows", 2.0)
        Traceback (most recent call last):
        ...
        ValueError: rows must be an integer >= 1, got rows=2.0; e.g. rows=2
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= minimum and (maximum is None or value <= maximum):
            return value
    words = f" ({about})" if about else ""
    fix = _nearest(value, minimum, maximum, integer=True)
    raise ValueError(
        f"{name} must be an integer {_limits(minimum, maximum)}{words}, got {name}={value!r}; e.g. {name}={fix}"
    )


def check_number(
    name: str, value: object, minimum: float | None = None, maximum: float | None = None, *, about: str = ""
) -> float:
    """Return ``value`` if it is a finite number within the range; else raise a ``ValueError`` saying so.

    For scales and strengths (``guidance_scale``), where a fraction is fine; integers pass too.

    Example:
        >>> check_number("guidance_scale", 7.5, minimum=0)
        7.5
        >>> check_number("guidance_scale", -1, minimum=0, about="7.5 is usual")
        Traceback (most recent call last):
        ...
        ValueError: guidance_scale must be a number >= 0 (7.5 is usual), got guidance_scale=-1; e.g. guidance_scale=0
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
            return value
    words = f" ({about})" if about else ""
    fix = _nearest(value, minimum, maximum, integer=False)
    limits = f" {_limits(minimum, maximum)}" if minimum is not None or maximum is not None else ""
    raise ValueError(f"{name} must be a number{limits}{words}, got {name}={value!r}; e.g. {name}={fix:g}")


def check_size(name: str, value: object) -> int:
    """Return ``value`` if it is a picture side in pixels the pipeline takes: an integer >= 8, a multiple of 8.

    Example:
        >>> check_size("height", 100)
        Traceback (most recent call last):
        ...
        ValueError: height must be a multiple of 8 (the VAE shrinks images 8 times), got height=100; use 96 or 104
    """
    size = check_count(name, value, minimum=SIZE_STEP)
    if size % SIZE_STEP:
        below = size // SIZE_STEP * SIZE_STEP
        raise ValueError(
            f"{name} must be a multiple of {SIZE_STEP} (the VAE shrinks images {SIZE_STEP} times), "
            f"got {name}={size}; use {below} or {below + SIZE_STEP}"
        )
    return size
