"""The rows of the benchmark: each changes one thing against a reference row, so each difference has one cause.

The reference is the ``baseline`` row: the profile's precision, DPM-Solver++ with the profile's fast step count,
one picture, PyTorch 2's SDPA attention. Rows about memory run at the large batch (16 on a GPU), against the
``batch 16`` row. The fast path is ``torch.compile`` of the UNet with channels_last and fused QKV projections,
at batch 1 and at the large batch.

Example:
    >>> [case.label for case in plan(PROFILES["tiny"])][:3]
    ['baseline', 'bfloat16', 'float16']
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.speed import DTYPES, compiles

FAST_SCHEDULER = "DPMSolverMultistepScheduler"
SLOW_SCHEDULER = "PNDMScheduler"
SCHEDULER_NAMES = {FAST_SCHEDULER: "DPM-Solver++", SLOW_SCHEDULER: "PNDM"}
FAST_PATH = ("channels_last", "fused QKV projections", "torch.compile")
GROUPS = ("baseline", "precision", "scheduler", "batch", "attention", "memory", "fast-path")


@dataclass(frozen=True)
class Case:
    """One row: which settings, scheduler, steps and batch; ``quick`` rows are the ``QUICK=1`` subset."""

    label: str
    group: str
    settings: tuple[str, ...]
    scheduler: str
    steps: int
    batch_size: int
    quick: bool = False

    def precision(self, default: torch.dtype) -> str:
        """The precision the row runs in: its precision setting, else the profile's."""
        named = [name for name in self.settings if name in DTYPES]
        return named[-1] if named else next(name for name, dtype in DTYPES.items() if dtype == default)

    @property
    def compiles(self) -> bool:
        return compiles(self.settings)

    @property
    def steps_label(self) -> str:
        return f"{SCHEDULER_NAMES.get(self.scheduler, self.scheduler)} {self.steps}"


def plan(
    profile, *, batch_sizes: tuple[int, ...] | None = None, steps: int | None = None, pndm_steps=None
) -> list[Case]:
    """Every row for ``profile`` (a :class:`helpers.Profile`), in the order they run.

    Args:
        batch_sizes: the batches of the batch rows; default 1 and the profile's (1, 8, 16 on a GPU). The memory
            rows and the large fast-path row use the largest.
        steps: DPM-Solver++ steps; default the profile's fast count (20 on a GPU).
        pndm_steps: PNDM steps; default the profile's (50 on a GPU).
    """
    steps = steps or profile.fast_steps
    pndm_steps = pndm_steps or profile.num_inference_steps
    batches = sorted(set(batch_sizes or (1, *profile.batch_sizes)))
    if any(b < 1 for b in batches):
        raise ValueError(f"batch sizes must be 1 or more, got {batches}")
    large = batches[-1]

    def case(label, group, settings=("baseline",), *, scheduler=FAST_SCHEDULER, n=steps, batch=1, quick=False):
        return Case(label, group, tuple(settings), scheduler, n, batch, quick)

    own = next(name for name, dtype in DTYPES.items() if dtype == profile.dtype)
    rows = [case("baseline", "baseline", quick=True)]
    rows += [case(name, "precision", (name,)) for name in sorted(DTYPES) if name != own]
    rows.append(case("PNDM", "scheduler", scheduler=SLOW_SCHEDULER, n=pndm_steps, quick=True))
    rows += [case(f"batch {b}", "batch", batch=b) for b in batches if b != 1]
    rows += [case(name, "attention", (name,), quick=True) for name in ("attention slicing", "classic attention")]
    rows += [case(name, "memory", (name,), batch=large) for name in ("VAE slicing", "VAE tiling")]
    rows += [
        case(name, "memory", (name,), batch=large, quick=True)
        for name in ("model CPU offload", "sequential CPU offload")
    ]
    rows += [case(name, "fast-path", (name,), quick=name != "torch.compile") for name in FAST_PATH]
    rows.append(case("fast path", "fast-path", FAST_PATH))
    if large != 1:
        rows.append(case(f"fast path, batch {large}", "fast-path", FAST_PATH, batch=large))
    rows.append(case("tiny autoencoder", "fast-path", ("tiny autoencoder",), quick=True))
    return rows
