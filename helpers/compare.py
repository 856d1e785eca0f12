"""Same prompt, same seed, several settings: make the images, time each setting, and tabulate the results.

Every run draws fresh generators from :func:`helpers.get_inputs`, so the settings see the same starting noise,
and a warm-up call keeps one-off start-up costs out of the first row.

Example:
    >>> runs = compare_schedulers(pipe, ["PNDMScheduler", "DPMSolverMultistepScheduler"], num_inference_steps=5)
    >>> [run.label for run in runs], len(runs[0].images)
    (['PNDMScheduler', 'DPMSolverMultistepScheduler'], 1)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .hardware import execution_device
from .inputs import get_inputs
from .measure import Measurement, measure
from .schedulers import set_scheduler, usable_schedulers
from .tables import markdown_table

# Listed as compatible with SD 1.5's scheduler, but not meant for it: left out of comparisons unless asked for.
NOT_FOR_SD15 = {
    "EDMEulerScheduler": "made for EDM-trained models (e.g. Playground v2.5), not for SD 1.5's noise prediction",
}


@dataclass
class Run:
    """One setting's result: its images and the time and peak memory it took."""

    label: str
    images: list[Image.Image]
    measurement: Measurement
    inputs: dict = field(default_factory=dict, repr=False)

    @property
    def seconds(self) -> float:
        return self.measurement.seconds

    @property
    def seconds_per_image(self) -> float:
        return self.measurement.seconds / len(self.images)

    @property
    def peak_mib(self) -> float:
        return self.measurement.peak_mib


# torchsde (behind DPMSolverSDEScheduler) warns at the first step that a time lies a rounding error past the end
# of its interval (exp(-(-log sigma_max)) just above sigma_max): harmless, and printed with the path of torchsde's
# file. Explained in notebook 03, not shown.
TORCHSDE_ROUNDING = r"Should have tb<=t1"


@contextmanager
def quiet(pipe) -> Iterator[None]:
    """Hide the pipeline's progress bars and torchsde's rounding warning inside the block (many runs, one table)."""
    before = dict(getattr(pipe, "_progress_bar_config", {}))  # what set_progress_bar_config stored last
    pipe.set_progress_bar_config(**{**before, "disable": True})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TORCHSDE_ROUNDING, category=UserWarning)
            yield
    finally:
        pipe.set_progress_bar_config(**before)


def warm_up(pipe, **input_kwargs) -> None:
    """One short call (one image, one step), so that start-up costs don't land in the first measurement."""
    kwargs = {**input_kwargs, "batch_size": 1, "num_inference_steps": 1}
    with quiet(pipe):
        pipe(**get_inputs(**kwargs))


def timed_run(pipe, label: str, inputs: dict, device=None) -> Run:
    """``pipe(**inputs)`` inside :func:`helpers.measure`; ``device`` defaults to where the pipeline computes."""
    device = execution_device(pipe) if device is None else device
    with quiet(pipe), measure(label, device) as m:
        images = pipe(**inputs).images
    return Run(label, images, m, inputs)


def compare_schedulers(
    pipe,
    names: Sequence[str] | Mapping[str, int] | None = None,
    *,
    warmup: bool = True,
    **input_kwargs,
) -> list[Run]:
    """The same prompt and seed through each scheduler in ``names``; the pipeline's scheduler is restored after.

    Args:
        names: scheduler class names; None means every usable compatible one except those in ``NOT_FOR_SD15``.
            A mapping ``{name: steps}`` gives each scheduler its own number of steps (labels then say
            ``"DPMSolverMultistepScheduler, 20 steps"``).
        warmup: make one short call first, so the first scheduler's time is not inflated.
        **input_kwargs: for :func:`helpers.get_inputs`, e.g. ``prompt=``, ``seed=``, ``num_inference_steps=``,
            ``height=``.

    Example:
        >>> [r.label for r in compare_schedulers(pipe, ["EulerDiscreteScheduler"], num_inference_steps=2)]
        ['EulerDiscreteScheduler']
        >>> [r.label for r in compare_schedulers(pipe, {"PNDMScheduler": 4, "UniPCMultistepScheduler": 2})]
        ['PNDMScheduler, 4 steps', 'UniPCMultistepScheduler, 2 steps']
    """
    if names is None:
        names = [name for name in usable_schedulers(pipe) if name not in NOT_FOR_SD15]
    if isinstance(names, str) or not names:
        raise ValueError(
            f"names must be a non-empty list of scheduler names, got names={names!r}; "
            f'e.g. ["PNDMScheduler", "DPMSolverMultistepScheduler"]'
        )
    steps = dict(names) if isinstance(names, Mapping) else dict.fromkeys(names)
    original = pipe.scheduler
    try:
        if warmup:
            warm_up(pipe, **input_kwargs)
        runs = []
        for name, count in steps.items():
            set_scheduler(pipe, name)
            kwargs = input_kwargs if count is None else {**input_kwargs, "num_inference_steps": count}
            label = name if count is None else f"{name}, {count} steps"
            runs.append(timed_run(pipe, label, get_inputs(**kwargs)))
        return runs
    finally:
        pipe.scheduler = original


def time_batch_sizes(pipe, batch_sizes: Sequence[int], *, warmup: bool = True, **input_kwargs) -> list[Run]:
    """One run per batch size (labelled ``"batch 4"`` etc.), to compare the time per image.

    Example:
        >>> [r.label for r in time_batch_sizes(pipe, [1, 2], num_inference_steps=2)]
        ['batch 1', 'batch 2']
    """
    if isinstance(batch_sizes, int) or not batch_sizes:
        raise ValueError(f"batch_sizes must be a non-empty list of integers, got batch_sizes={batch_sizes!r}")
    if warmup:
        warm_up(pipe, **input_kwargs)
    return [
        timed_run(pipe, f"batch {n}", get_inputs(**{**input_kwargs, "batch_size": n}))  # get_inputs checks n
        for n in batch_sizes
    ]


def runs_table(runs: Sequence[Run]) -> str:
    """A Markdown table of runs: images, total seconds, seconds per image, peak memory (and what kind).

    Example:
        >>> run = Run("batch 2", [Image.new("RGB", (64, 64))] * 2, Measurement("batch 2", "cpu", 1.5, 300 * 2**20))
        >>> print(runs_table([run]))
        | setting | images | seconds | s / image | peak MiB | memory measured |
        | --- | ---: | ---: | ---: | ---: | --- |
        | batch 2 | 2 | 1.50 | 0.750 | 300 | process RSS |
    """
    columns = ["setting", "images", "seconds", "s / image", "peak MiB", "memory measured"]
    rows = [
        (
            run.label,
            len(run.images),
            f"{run.seconds:.2f}",
            f"{run.seconds_per_image:.3f}",
            f"{run.peak_mib:,.0f}",
            run.measurement.memory_kind,
        )
        for run in runs
    ]
    return markdown_table(rows, columns, right=set(columns) - {"setting", "memory measured"})


def image_difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference of two same-sized images, in pixel levels (0: identical, 255: opposite).

    Example:
        >>> image_difference(Image.new("RGB", (2, 2), "black"), Image.new("RGB", (2, 2), "white"))
        255.0
    """
    if a.size != b.size:
        raise ValueError(f"images must have the same size to compare, got {a.size} and {b.size}")
    pa = np.asarray(a.convert("RGB"), dtype=np.float64)
    pb = np.asarray(b.convert("RGB"), dtype=np.float64)
    return float(np.abs(pa - pb).mean())


def difference_image(a: Image.Image, b: Image.Image, gain: float = 4.0) -> Image.Image:
    """Where two same-sized images differ: the absolute difference per pixel, times ``gain`` (black: identical).

    Example:
        >>> a, b = Image.new("RGB", (2, 2), (10, 10, 10)), Image.new("RGB", (2, 2), (20, 10, 10))
        >>> difference_image(a, b).getpixel((0, 0))
        (40, 0, 0)
    """
    if a.size != b.size:
        raise ValueError(f"images must have the same size to compare, got {a.size} and {b.size}")
    if gain <= 0:
        raise ValueError(f"gain must be positive, got gain={gain!r}; 1 shows the difference as it is")
    pa = np.asarray(a.convert("RGB"), dtype=np.float64)
    pb = np.asarray(b.convert("RGB"), dtype=np.float64)
    return Image.fromarray(np.clip(np.abs(pa - pb) * gain, 0, 255).astype(np.uint8))


def nearest_image(image: Image.Image, candidates: Sequence[Image.Image]) -> int:
    """The index of the candidate that looks most like ``image`` (smallest :func:`image_difference`).

    Example:
        >>> nearest_image(Image.new("RGB", (2, 2), "red"), [Image.new("RGB", (2, 2), c) for c in ("blue", "red")])
        1
    """
    if not candidates:
        raise ValueError("candidates is empty: pass the images to search, e.g. a batch's pipe(...).images")
    return int(np.argmin([image_difference(image, c) for c in candidates]))
