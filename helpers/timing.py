"""Timing a pipeline properly: warm-up calls first, then several timed calls, their median and spread, and the
denoising loop's own speed in iterations per second.

The first call of a pipeline pays one-off costs (memory allocation, kernel selection, and for a
``torch.compile``-d UNet the whole compilation), so :func:`time_pipeline` makes ``warmup`` short calls (one step,
the same batch and size, so the same shapes) before it times anything. The loop's speed is clocked between the end
of its first and of its last step, so the text encoder, the VAE decode and the safety checker stay out of it.

Example:
    >>> timing = time_pipeline(pipe, "batch of 2", batch_size=2, num_inference_steps=5, reps=3)
    >>> len(timing.seconds), timing.unet_calls  # once a step with Euler (SD1.5's PNDM calls it once more)
    (3, 5)
    >>> print(timing)  # doctest: +SKIP
    batch of 2: 1.23 s per call (median of 3, 1.20 to 1.31), 0.615 s per picture, 4.9 it/s
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from PIL import Image

from .checks import check_count
from .compare import quiet, timed_run
from .inputs import get_inputs
from .measure import device_type, synchronize


class StepClock:
    """A ``callback_on_step_end`` that notes when the first and the last denoising step ended.

    It synchronizes the device only at those two steps, so it does not slow the loop in between.
    """

    def __init__(self, device: str):
        self.device = device
        self.calls = 0
        self.first_end: float | None = None
        self.last_end: float | None = None

    def __call__(self, pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        self.calls += 1
        last = step_index == getattr(pipe, "num_timesteps", step_index + 1) - 1
        if step_index == 0 or last:
            synchronize(self.device)
            now = time.perf_counter()
            if step_index == 0:
                self.first_end = now
            if last:
                self.last_end = now
        return callback_kwargs

    @property
    def iterations_per_second(self) -> float:
        """Steps 2 to N over the time they took (NaN with fewer than two steps)."""
        if self.calls < 2 or self.first_end is None or self.last_end is None or self.last_end <= self.first_end:
            return float("nan")
        return (self.calls - 1) / (self.last_end - self.first_end)


@dataclass
class Timing:
    """What :func:`time_pipeline` measured for one setting."""

    label: str
    batch_size: int
    seconds: list[float]  # each timed call, start to pictures
    iterations_per_second: list[float]  # each timed call's denoising loop
    unet_calls: int  # denoising steps per call (PNDM runs one more than asked)
    guided: bool  # classifier-free guidance: the UNet saw each latent twice per step
    warmup_seconds: list[float]  # each warm-up call (one step)
    peak_bytes: int | None
    memory_kind: str
    images: list[Image.Image] = field(default_factory=list, repr=False)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def seconds_per_image(self) -> float:
        return self.median_seconds / self.batch_size

    @property
    def median_iterations_per_second(self) -> float:
        return statistics.median(self.iterations_per_second)

    @property
    def spread_percent(self) -> float:
        """(slowest - fastest) / median, in percent: how much the timed calls disagreed."""
        return 100 * (max(self.seconds) - min(self.seconds)) / self.median_seconds

    @property
    def peak_mib(self) -> float:
        return float("nan") if self.peak_bytes is None else self.peak_bytes / 2**20

    @property
    def first_call_extra_seconds(self) -> float | None:
        """How much longer the first warm-up call took than the last (compilation, for a compiled UNet).

        None with fewer than two warm-up calls.
        """
        if len(self.warmup_seconds) < 2:
            return None
        return max(0.0, self.warmup_seconds[0] - self.warmup_seconds[-1])

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "batch_size": self.batch_size,
            "seconds": [round(s, 5) for s in self.seconds],
            "median_seconds": round(self.median_seconds, 5),
            "seconds_per_image": round(self.seconds_per_image, 5),
            "spread_percent": round(self.spread_percent, 2),
            "iterations_per_second": [round(v, 4) for v in self.iterations_per_second],
            "median_iterations_per_second": round(self.median_iterations_per_second, 4),
            "unet_calls": self.unet_calls,
            "guided": self.guided,
            "warmup_seconds": [round(s, 5) for s in self.warmup_seconds],
            "first_call_extra_seconds": None
            if self.first_call_extra_seconds is None
            else round(self.first_call_extra_seconds, 3),
            "peak_mib": round(self.peak_mib, 1),
            "memory_kind": self.memory_kind,
        }

    def __str__(self) -> str:
        return (
            f"{self.label}: {self.median_seconds:.3g} s per call (median of {len(self.seconds)}, "
            f"{min(self.seconds):.3g} to {max(self.seconds):.3g}), {self.seconds_per_image:.3g} s per picture, "
            f"{self.median_iterations_per_second:.3g} it/s"
        )


def time_pipeline(
    pipe,
    label: str = "",
    *,
    reps: int = 3,
    warmup: int = 1,
    device=None,
    on_call=None,
    **input_kwargs,
) -> Timing:
    """Warm up, then time ``reps`` calls of ``pipe`` on the inputs of :func:`helpers.get_inputs`.

    Args:
        label: the row's name.
        reps: timed calls; the median is the result, the fastest and slowest its spread.
        warmup: one-step calls before timing, on the same batch and size (2 or more to see compilation apart).
        device: where to read time and memory; default: where the pipeline computes.
        on_call: called with no argument after every call, warm-up included (e.g. to advance a progress bar).
        **input_kwargs: for :func:`helpers.get_inputs`: ``batch_size``, ``num_inference_steps``, ``prompt``,
            ``seed``, ``height``, ``width``.

    Example:
        >>> time_pipeline(pipe, batch_size=1, num_inference_steps=2, reps=1, warmup=0).unet_calls  # PNDM's: 3
        2
    """
    check_count("reps", reps)
    check_count("warmup", warmup, minimum=0)
    device = getattr(pipe, "_execution_device", pipe.device) if device is None else device
    kind = device_type(device)
    warm_kwargs = {**input_kwargs, "num_inference_steps": 1}
    warmup_seconds = []
    for _ in range(warmup):
        synchronize(kind)
        start = time.perf_counter()
        with quiet(pipe):
            pipe(**get_inputs(**warm_kwargs))
        synchronize(kind)
        warmup_seconds.append(time.perf_counter() - start)
        if on_call:
            on_call()
    seconds, speeds, peaks, run, clock = [], [], [], None, None
    for _ in range(reps):
        clock = StepClock(kind)
        run = timed_run(pipe, label, {**get_inputs(**input_kwargs), "callback_on_step_end": clock}, device=device)
        seconds.append(run.seconds)
        speeds.append(clock.iterations_per_second)
        peaks.append(run.measurement.peak_bytes)
        if on_call:
            on_call()
    return Timing(
        label=label,
        batch_size=len(run.images),
        seconds=seconds,
        iterations_per_second=speeds,
        unet_calls=clock.calls,
        guided=bool(getattr(pipe, "do_classifier_free_guidance", True)),
        warmup_seconds=warmup_seconds,
        peak_bytes=max((p for p in peaks if p is not None), default=None),
        memory_kind=run.measurement.memory_kind,
        images=run.images,
    )
