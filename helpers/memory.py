"""Memory settings of a pipeline: apply one by name, undo it afterwards, and measure each on the same batch.

The settings are the ones the diffusers docs offer for Stable Diffusion 1.5, spelled the diffusers 0.42 way
(``pipe.vae.enable_slicing()``; older tutorials write ``pipe.enable_vae_slicing()``, which is gone).

Example:
    >>> with memory_setting(pipe, "attention slicing"):
    ...     attention_processors(pipe)
    ['SlicedAttnProcessor']
    >>> attention_processors(pipe)
    ['AttnProcessor2_0']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .compare import Run, timed_run, warm_up
from .inputs import get_inputs


@dataclass(frozen=True)
class MemorySetting:
    """A named memory setting: the line a learner writes, and how to apply and undo it."""

    code: str
    apply: Callable
    undo: Callable
    needs_accelerator: bool = False


def _nothing(pipe, device) -> None:
    pass


def _undo_offload(pipe, device) -> None:
    pipe.remove_all_hooks()
    pipe.to(device)


MEMORY_SETTINGS: dict[str, MemorySetting] = {
    "baseline": MemorySetting("# nothing: every model on the device, all at once", _nothing, _nothing),
    "attention slicing": MemorySetting(
        "pipe.enable_attention_slicing()",
        lambda pipe, device: pipe.enable_attention_slicing(),
        lambda pipe, device: pipe.disable_attention_slicing(),
    ),
    "VAE slicing": MemorySetting(
        "pipe.vae.enable_slicing()",
        lambda pipe, device: pipe.vae.enable_slicing(),
        lambda pipe, device: pipe.vae.disable_slicing(),
    ),
    "VAE tiling": MemorySetting(
        "pipe.vae.enable_tiling()",
        lambda pipe, device: pipe.vae.enable_tiling(),
        lambda pipe, device: pipe.vae.disable_tiling(),
    ),
    "model CPU offload": MemorySetting(
        "pipe.enable_model_cpu_offload()",
        lambda pipe, device: pipe.enable_model_cpu_offload(device=device),
        _undo_offload,
        needs_accelerator=True,
    ),
    "sequential CPU offload": MemorySetting(
        "pipe.enable_sequential_cpu_offload()",
        lambda pipe, device: pipe.enable_sequential_cpu_offload(device=device),
        _undo_offload,
        needs_accelerator=True,
    ),
}


def _check_name(name: str) -> MemorySetting:
    if name not in MEMORY_SETTINGS:
        raise ValueError(f"Unknown memory setting name={name!r}; use one of {list(MEMORY_SETTINGS)}")
    return MEMORY_SETTINGS[name]


def memory_settings_table() -> str:
    """A Markdown table of :data:`MEMORY_SETTINGS`: each setting's name and the line of code that applies it.

    Example:
        >>> memory_settings_table().splitlines()[3]
        '| attention slicing | `pipe.enable_attention_slicing()` |'
    """
    rows = [f"| {name} | `{setting.code}` |" for name, setting in MEMORY_SETTINGS.items()]
    return "\n".join(["| setting | code |", "| --- | --- |", *rows])


def why_unavailable(pipe, name: str) -> str | None:
    """Why setting ``name`` cannot run on this pipeline's device, or None if it can.

    Example:
        >>> why_unavailable(pipe, "model CPU offload")  # a pipeline on the CPU
        'model CPU offload keeps the weights in main memory and moves them to an accelerator only while they are...'
    """
    setting = _check_name(name)
    if setting.needs_accelerator and pipe.device.type == "cpu":
        return (
            f"{name} keeps the weights in main memory and moves them to an accelerator only while they are used; "
            f"this pipeline is on the CPU, where everything already lives in main memory, and diffusers refuses it "
            f"without an accelerator"
        )
    return None


@contextmanager
def memory_setting(pipe, name: str) -> Iterator[MemorySetting]:
    """Apply the memory setting ``name`` inside the block and undo it afterwards, even if the block fails.

    Raises:
        ValueError: an unknown name.
        RuntimeError: a setting that this device cannot use (see :func:`why_unavailable`).
    """
    setting = _check_name(name)
    reason = why_unavailable(pipe, name)
    if reason is not None:
        raise RuntimeError(f"Cannot apply {name!r}: {reason}")
    device = pipe.device
    setting.apply(pipe, device)
    try:
        yield setting
    finally:
        setting.undo(pipe, device)


def attention_processors(pipe) -> list[str]:
    """The class names of the UNet's attention processors, sorted (``AttnProcessor2_0`` is PyTorch 2's SDPA)."""
    return sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()})


def compare_memory_settings(
    pipe, names: Sequence[str] | None = None, *, warmup: bool = True, **input_kwargs
) -> tuple[list[Run], dict[str, str]]:
    """Generate the same batch under each memory setting in turn; return the runs and the settings skipped.

    Args:
        names: setting names from ``MEMORY_SETTINGS``; None means all of them, in that order.
        warmup: make one short call first, so the first setting's time is not inflated.
        **input_kwargs: for :func:`helpers.get_inputs`, e.g. ``batch_size=16``, ``num_inference_steps=20``.

    Returns:
        ``(runs, skipped)``: one :class:`helpers.compare.Run` per setting that ran, and ``{name: reason}`` for the
        ones this device cannot use (the CPU offloads on a CPU).

    Example:
        >>> runs, skipped = compare_memory_settings(pipe, ["baseline", "VAE slicing"], batch_size=2)
        >>> [r.label for r in runs], skipped
        (['baseline', 'VAE slicing'], {})
    """
    names = list(MEMORY_SETTINGS) if names is None else names
    if isinstance(names, str) or not names:
        raise ValueError(f"names must be a non-empty list of setting names, got names={names!r}")
    for name in names:
        _check_name(name)
    device = pipe.device
    if warmup:
        warm_up(pipe, **input_kwargs)
    runs, skipped = [], {}
    for name in names:
        reason = why_unavailable(pipe, name)
        if reason is not None:
            skipped[name] = reason
            continue
        with memory_setting(pipe, name):
            runs.append(timed_run(pipe, name, get_inputs(**input_kwargs), device=device))
    return runs, skipped
