"""Schedulers: which ones a pipeline can use, and switching between them by name.

``pipe.scheduler.compatibles`` is built from a set, so its order changes from run to run: we sort it by name.
It may also list placeholders for schedulers whose extra packages are missing (``LMSDiscreteScheduler`` needs
scipy, ``DPMSolverSDEScheduler`` needs torchsde); :func:`list_schedulers` says which.

Example:
    >>> from helpers import load_pipeline, set_scheduler
    >>> pipe = load_pipeline(profile="tiny")
    >>> type(set_scheduler(pipe, "DPMSolverMultistepScheduler")).__name__
    'DPMSolverMultistepScheduler'
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import diffusers
from diffusers.utils import DummyObject


@dataclass(frozen=True)
class SchedulerInfo:
    """One compatible scheduler: its class name, whether it can run here, and if not, why."""

    name: str
    usable: bool
    missing: tuple[str, ...] = ()


def _family(pipe) -> list:
    """The schedulers compatible with the pipeline's first scheduler.

    Remembered on the pipeline: some compatible schedulers (EDMEulerScheduler) list no compatibles of their own,
    so after switching to one, ``pipe.scheduler.compatibles`` would no longer offer the way back.
    """
    family = getattr(pipe, "_scheduler_family", None)
    if family is None:
        family = list(pipe.scheduler.compatibles)
        try:
            pipe._scheduler_family = family
        except AttributeError:  # an object that takes no new attributes: recompute next time
            pass
    return family


def list_schedulers(pipe) -> list[SchedulerInfo]:
    """The schedulers compatible with ``pipe``'s original one, sorted by name, each marked usable or not."""
    infos = []
    for cls in _family(pipe):
        if isinstance(cls, DummyObject):  # a placeholder: an extra package it needs is not installed
            backends = tuple(getattr(cls, "_backends", ()))
            missing = tuple(b for b in backends if importlib.util.find_spec(b) is None) or backends
            infos.append(SchedulerInfo(cls.__name__, False, missing))
        else:
            infos.append(SchedulerInfo(cls.__name__, True))
    return sorted(infos, key=lambda info: info.name)


def usable_schedulers(pipe) -> list[str]:
    """Names of the compatible schedulers that can run here, sorted."""
    return [info.name for info in list_schedulers(pipe) if info.usable]


def set_scheduler(pipe, name: str, **config_overrides):
    """Swap ``pipe.scheduler`` for the compatible scheduler ``name``, built from the current one's config.

    This is the tutorial's ``pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)``,
    by name. Returns the new scheduler.

    Example:
        >>> set_scheduler(pipe, "EulerDiscreteScheduler").config.beta_schedule
        'scaled_linear'
    """
    infos = {info.name: info for info in list_schedulers(pipe)}
    if name not in infos:
        raise ValueError(f"Unknown scheduler name={name!r} for this pipeline; use one of {sorted(infos)}")
    if not infos[name].usable:
        raise ImportError(
            f"Scheduler {name} needs {', '.join(infos[name].missing)}: pip install {' '.join(infos[name].missing)}"
        )
    cls = getattr(diffusers, name)
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **config_overrides)
    return pipe.scheduler
