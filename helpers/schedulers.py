"""Schedulers: which ones a pipeline can use, switching between them by name, and the steps each one takes.

``pipe.scheduler.compatibles`` is built from a set, so its order changes from run to run: we sort it by name.
It may also list placeholders for schedulers whose extra packages are missing (``LMSDiscreteScheduler`` needs
scipy, ``DPMSolverSDEScheduler`` needs torchsde); :func:`list_schedulers` says which.

``scheduler.set_timesteps(n)`` picks the ``n`` steps a generation runs (the pipeline calls it at the start of every
call); :func:`noise_levels` gives the noise level of each, and :func:`schedule_chart` draws several schedules.

Example:
    >>> from helpers import load_pipeline, set_scheduler
    >>> pipe = load_pipeline(profile="tiny")
    >>> type(set_scheduler(pipe, "DPMSolverMultistepScheduler")).__name__
    'DPMSolverMultistepScheduler'
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass

import diffusers
import torch
from diffusers.utils import DummyObject

from .charts import Chart


@dataclass(frozen=True)
class SchedulerInfo:
    """One compatible scheduler: its class name, whether it can run here, and if not, why."""

    name: str
    usable: bool
    missing: tuple[str, ...] = ()


def _family(pipe) -> list:
    """The schedulers compatible with the pipeline's first scheduler.

    Remembered on the pipeline: some compatible schedulers (EDMEulerScheduler) list only themselves as compatible,
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
    by name, with one difference: settings the current config leaves unset (None) are not passed on, so the new
    scheduler keeps its own defaults for them. (An ``EulerDiscreteScheduler`` saved by diffusers 0.42 writes
    ``sigma_min: null``; passed on, it would replace ``EDMEulerScheduler``'s 0.002 and break it.) Returns the new
    scheduler.

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
    config = {key: value for key, value in pipe.scheduler.config.items() if value is not None}
    pipe.scheduler = cls.from_config(config, **config_overrides)
    return pipe.scheduler


def noise_levels(scheduler) -> list[float]:
    """The noise level sigma of each UNet call of a schedule, after ``scheduler.set_timesteps(n)``.

    sigma is the noise's standard deviation relative to the signal's at a timestep t, sqrt((1 - alpha_bar_t) /
    alpha_bar_t): about 14.6 at Stable Diffusion 1.5's last training timestep (999), 0.03 at its first (0). A
    scheduler that keeps its own ``sigmas`` (Euler, DPM-Solver, ...) gives those, without the last one, where the
    final step lands; for the others (PNDM, DDIM) sigma comes from ``alphas_cumprod`` at each timestep.

    Raises:
        ValueError: ``set_timesteps`` was not called yet.

    Example:
        >>> from diffusers import DPMSolverMultistepScheduler
        >>> scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
        >>> scheduler.set_timesteps(10)
        >>> [round(sigma, 2) for sigma in noise_levels(scheduler)][:3]
        [14.61, 8.3, 5.09]
    """
    name = type(scheduler).__name__
    if getattr(scheduler, "num_inference_steps", None) is None:
        raise ValueError(f"{name} has no schedule yet: call scheduler.set_timesteps(n) first, e.g. n=20")
    timesteps = scheduler.timesteps
    sigmas = getattr(scheduler, "sigmas", None)
    if isinstance(sigmas, torch.Tensor) and len(sigmas) == len(timesteps) + 1:
        return [float(sigma) for sigma in sigmas[:-1]]
    alphas_cumprod = scheduler.alphas_cumprod[torch.as_tensor(timesteps).round().long()]
    return [float(sigma) for sigma in ((1 - alphas_cumprod) / alphas_cumprod).sqrt()]


def schedule_chart(schedules: Mapping[str, object], *, title: str = "") -> Chart:
    """Two panels, one line per schedule: the timestep of each step, and its noise level (log scale).

    Args:
        schedules: ``{label: scheduler}``, each scheduler after ``set_timesteps(n)``.
        title: the figure's title.

    Example:
        >>> from diffusers import DPMSolverMultistepScheduler
        >>> karras = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
        >>> karras.set_timesteps(10)
        >>> [len(axes.lines) for axes in schedule_chart({"Karras sigmas": karras}).axes]
        [1, 1]
    """
    if not schedules:
        raise ValueError("schedules is empty: give {label: scheduler}, each after scheduler.set_timesteps(n)")
    levels = {}
    for label, scheduler in schedules.items():
        try:
            levels[label] = noise_levels(scheduler)
        except ValueError as error:
            raise ValueError(f"schedule {label!r}: {error}") from None
    fig = Chart(figsize=(11, 4), layout="constrained")
    timestep_axes, sigma_axes = fig.subplots(1, 2)
    markers = "osD^vP*X"  # lines that coincide (linspace and trailing nearly do) stay told apart
    for i, ((label, scheduler), sigmas) in enumerate(zip(schedules.items(), levels.values(), strict=True)):
        steps = range(1, len(sigmas) + 1)
        style = {"marker": markers[i % len(markers)], "markersize": 7 - (i % 3), "label": label}
        timestep_axes.plot(steps, [float(t) for t in scheduler.timesteps], **style)
        sigma_axes.plot(steps, sigmas, **style)
    timestep_axes.set(xlabel="step", ylabel="timestep t (999: pure noise)", ylim=(-20, 1020))
    sigma_axes.set(xlabel="step", ylabel="noise level sigma (log scale)", yscale="log")
    for axes in (timestep_axes, sigma_axes):
        axes.grid(alpha=0.3)
    sigma_axes.legend()
    if title:
        fig.suptitle(title)
    return fig
