"""Measuring instead of guessing: wall time and peak memory of a block of code.

On CUDA the peak is what PyTorch allocated on the GPU; on Apple's MPS it is the driver's allocation, sampled;
on the CPU it is the process's resident memory (RSS), sampled. The kind is recorded beside the number, because
the three are not comparable with each other.

Example:
    >>> with measure("batch of 8") as m:
    ...     images = pipe(**get_inputs(batch_size=8)).images
    >>> print(m)  # doctest: +SKIP
    batch of 8: 1.23 s, peak 512.0 MiB (process RSS)
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil
import torch

MEMORY_KINDS = {"cuda": "GPU memory allocated", "mps": "MPS driver memory", "cpu": "process RSS"}
# The highest CUDA peak seen before measure() reset PyTorch's counter, so the process's overall peak survives.
_cuda_peak_before_resets = 0


def cuda_peak_bytes() -> int:
    """The most GPU memory PyTorch allocated in this process so far, across the resets that measure() does.

    run-all reads it when a notebook's kernel exits (``torch.cuda.max_memory_allocated()`` alone would only cover
    the time since the last ``measure`` block began).
    """
    return max(_cuda_peak_before_resets, torch.cuda.max_memory_allocated())


@dataclass
class Measurement:
    """What :func:`measure` recorded. ``peak_bytes`` is None until the block ends."""

    label: str = ""
    device: str = "cpu"
    seconds: float = float("nan")
    peak_bytes: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def peak_mib(self) -> float:
        return float("nan") if self.peak_bytes is None else self.peak_bytes / 2**20

    @property
    def memory_kind(self) -> str:
        return MEMORY_KINDS.get(self.device, self.device)

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "device": self.device,
            "seconds": round(self.seconds, 4),
            "peak_mib": round(self.peak_mib, 1),
            "memory_kind": self.memory_kind,
            **self.extra,
        }

    def __str__(self) -> str:
        return f"{self.label}: {self.seconds:.2f} s, peak {self.peak_mib:.1f} MiB ({self.memory_kind})"


class _Sampler(threading.Thread):
    """Polls a memory reading every ``interval`` seconds and keeps the highest."""

    def __init__(self, read, interval: float = 0.005):
        super().__init__(daemon=True)
        self.read, self.interval, self.peak = read, interval, read()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, self.read())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, self.read())


def synchronize(device: str) -> None:
    """Wait until the device has finished its queued work (a no-op on the CPU), so a clock reads true time."""
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def device_type(device) -> str:
    """``"cuda"``, ``"mps"`` or ``"cpu"`` for a device name, a ``torch.device`` or None (CUDA if present)."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return getattr(device, "type", None) or str(device).split(":")[0]


@contextmanager
def measure(label: str = "", device=None):
    """Record the wall time and peak memory of the ``with`` block.

    Args:
        label: a name for the row in a results table.
        device: ``"cuda"``, ``"mps"``, ``"cpu"``, a ``torch.device``, or a pipeline's ``pipe.device``;
            None means CUDA if present, else the CPU.

    Example:
        >>> with measure("one image", pipe.device) as m:
        ...     image = pipe(**get_inputs()).images[0]
        >>> m.seconds > 0
        True
    """
    device = device_type(device)
    if device not in MEMORY_KINDS:
        raise ValueError(f"measure() cannot read memory on device={device!r}; use one of {sorted(MEMORY_KINDS)}")
    result = Measurement(label=label, device=device)
    synchronize(device)
    if device == "cuda":
        global _cuda_peak_before_resets
        _cuda_peak_before_resets = cuda_peak_bytes()
        torch.cuda.reset_peak_memory_stats()
        sampler = None
    elif device == "mps":
        sampler = _Sampler(torch.mps.driver_allocated_memory)
    else:
        process = psutil.Process()
        sampler = _Sampler(lambda: process.memory_info().rss)
    if sampler is not None:
        sampler.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        synchronize(device)
        result.seconds = time.perf_counter() - start
        result.peak_bytes = torch.cuda.max_memory_allocated() if sampler is None else sampler.stop()
