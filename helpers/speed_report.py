"""Reports of speed measurements: speed-ups against a baseline, a Markdown table, and a bar chart.

They read the :class:`helpers.timing.Timing` rows that :func:`helpers.speed.compare_speed_settings` returns; the
first row of each comparison is its reference.

Example:
    >>> baseline = Timing("baseline", 1, [2.0], [10.0], 20, True, [0.5], None, "process RSS")
    >>> fused = Timing("fused QKV projections", 1, [1.6], [12.5], 20, True, [0.4], None, "process RSS")
    >>> speedups([baseline, fused])
    [1.0, 1.25]
    >>> print(speed_table([baseline, fused]))
    | setting | s / picture | it/s | x faster | peak MiB | memory measured | first call extra s |
    | --- | ---: | ---: | ---: | ---: | --- | ---: |
    | baseline | 2 | 10 | 1.00 | nan | process RSS |  |
    | fused QKV projections | 1.6 | 12.5 | 1.25 | nan | process RSS |  |
"""

from __future__ import annotations

from collections.abc import Sequence

from .charts import bar_chart
from .tables import markdown_table
from .timing import Timing


def speedups(timings: Sequence[Timing]) -> list[float]:
    """How many times faster than the first timing each one is, per picture (1.0 for the first)."""
    if not timings:
        raise ValueError("timings is empty: give the result of compare_speed_settings")
    reference = timings[0].seconds_per_image
    return [reference / t.seconds_per_image for t in timings]


def _or_na(value: float, fmt: str = "{:.3g}") -> str:
    """A number, or "n/a" for NaN (the loop's speed needs two steps at least)."""
    return "n/a" if value != value else fmt.format(value)


def speed_table(timings: Sequence[Timing], unet_step_flops: int | None = None, peak_tflops: float | None = None) -> str:
    """A Markdown table: seconds per picture, it/s, speed-up against the first row, peak memory, first-call extra.

    Args:
        unet_step_flops: the FLOPs of one guided step (:func:`helpers.flops.pipeline_flops`); adds the UNet's
            achieved TFLOP/s (FLOPs per step times it/s).
        peak_tflops: the device's peak (:func:`helpers.flops.peak_tflops`); adds the share of it.

    Example:
        >>> timing = Timing("baseline", 1, [2.0], [10.0], 20, True, [0.5], None, "process RSS")
        >>> print(speed_table([timing], unet_step_flops=10**12, peak_tflops=100.0).splitlines()[2])
        | baseline | 2 | 10 | 1.00 | nan | process RSS |  | 10 | 10.0 |
    """
    columns = ["setting", "s / picture", "it/s", "x faster", "peak MiB", "memory measured", "first call extra s"]
    columns += ["UNet TFLOP/s"] if unet_step_flops else []
    columns += ["% of peak"] if unet_step_flops and peak_tflops else []
    rows = []
    for timing, factor in zip(timings, speedups(timings), strict=True):
        extra = "" if timing.first_call_extra_seconds is None else f"{timing.first_call_extra_seconds:.1f}"
        speed = timing.median_iterations_per_second
        row = [
            timing.label,
            f"{timing.seconds_per_image:.3g}",
            _or_na(speed),
            f"{factor:.2f}",
            f"{timing.peak_mib:,.0f}",
            timing.memory_kind,
            extra,
        ]
        if unet_step_flops:
            rate = unet_step_flops * speed / 1e12
            row.append(_or_na(rate))
            if peak_tflops:
                row.append(_or_na(100 * rate / peak_tflops, "{:.1f}"))
        rows.append(row)
    return markdown_table(rows, columns, right=set(columns) - {"setting", "memory measured"})


def speed_chart(sections: Sequence[Sequence[Timing]], title: str = ""):
    """Bars of how many times faster each setting is than the baseline timed with it, and of seconds per picture.

    Args:
        sections: lists of timings, each starting with its own baseline (as :func:`compare_speed_settings`
            returns them for ``["baseline", ...]``): measured close together, so that a machine whose load
            changes in between still compares like with like. The first section's baseline is the chart's.
    """
    if not sections or not all(sections):
        raise ValueError("sections must be non-empty lists of timings, each starting with its baseline")
    first = sections[0][0]
    labels, factors, seconds = [first.label], [1.0], [first.seconds_per_image]
    for section in sections:
        for timing, factor in zip(section[1:], speedups(section)[1:], strict=True):
            labels.append(timing.label)
            factors.append(factor)
            seconds.append(timing.seconds_per_image)
    return bar_chart(
        labels,
        {"x faster than baseline": factors, "seconds per picture": seconds},
        title=title,
        value_format={"x faster than baseline": "{:.2f}", "seconds per picture": "{:.3g}"},
    )
