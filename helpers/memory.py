"""Memory settings of a pipeline: apply one by name, undo it afterwards, and measure each on the same batch.

The settings are the original tutorial's attention slicing and the ones of diffusers' memory guide that a
UNet pipeline such as Stable Diffusion 1.5 takes with one call, spelled the diffusers 0.42 way
(``pipe.vae.enable_slicing()``; older tutorials write ``pipe.enable_vae_slicing()``, which is gone). The guide
itself no longer lists attention slicing (only diffusers' MPS guide still recommends it); its newer group
offloading and layerwise casting are not measured here. They form a :class:`helpers.settings.Settings` registry,
the same kind as the speed settings of :mod:`helpers.speed`.

Example:
    >>> with memory_setting(pipe, "attention slicing"):
    ...     attention_processors(pipe)
    ['SlicedAttnProcessor']
    >>> attention_processors(pipe)
    ['AttnProcessor2_0']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from .compare import timed_run, warm_up
from .inputs import get_inputs
from .settings import Comparison, Setting, Settings


def _offload(name: str, method: str) -> Setting:
    """``pipe.<method>()``, a CPU offload: the weights wait in main memory and visit the accelerator to run."""

    def apply(pipe):
        device = pipe.device
        getattr(pipe, method)(device=device)
        return device

    def undo(pipe, device) -> None:
        pipe.remove_all_hooks()
        pipe.to(device)

    def why_unavailable(pipe) -> str | None:
        if pipe.device.type != "cpu":
            return None
        return (
            f"{name} keeps the weights in main memory and moves them to an accelerator only while they are used; "
            f"this pipeline runs on the CPU, where everything already lives in main memory (and on a machine "
            f"without an accelerator, pipe.{method}() raises RuntimeError)"
        )

    return Setting(name, f"pipe.{method}()", apply, undo, why_unavailable)


MEMORY_SETTINGS = Settings(
    "memory",
    [
        Setting.baseline("# nothing: every model on the device, all at once"),
        Setting.toggle(
            "attention slicing",
            "pipe.enable_attention_slicing()",
            lambda pipe: pipe.enable_attention_slicing(),
            lambda pipe: pipe.disable_attention_slicing(),
        ),
        Setting.toggle(
            "VAE slicing",
            "pipe.vae.enable_slicing()",
            lambda pipe: pipe.vae.enable_slicing(),
            lambda pipe: pipe.vae.disable_slicing(),
        ),
        Setting.toggle(
            "VAE tiling",
            "pipe.vae.enable_tiling()",
            lambda pipe: pipe.vae.enable_tiling(),
            lambda pipe: pipe.vae.disable_tiling(),
        ),
        _offload("model CPU offload", "enable_model_cpu_offload"),
        _offload("sequential CPU offload", "enable_sequential_cpu_offload"),
    ],
)


def memory_settings_table() -> str:
    """A Markdown table of :data:`MEMORY_SETTINGS`: each setting's name and the line of code that applies it.

    Example:
        >>> memory_settings_table().splitlines()[3]
        '| attention slicing | `pipe.enable_attention_slicing()` |'
    """
    return MEMORY_SETTINGS.table()


def why_unavailable(pipe, name: str) -> str | None:
    """Why memory setting ``name`` cannot run on this pipeline's device, or None if it can.

    Example:
        >>> why_unavailable(pipe, "model CPU offload")  # a pipeline on the CPU
        'model CPU offload keeps the weights in main memory and moves them to an accelerator only while they are...'
    """
    return MEMORY_SETTINGS.why_unavailable(pipe, name)


@contextlib.contextmanager
def memory_setting(pipe, name: str) -> Iterator[Setting]:
    """Apply the memory setting ``name`` inside the block and undo it afterwards, even if the block fails.

    Raises:
        ValueError: an unknown name.
        RuntimeError: a setting that this device cannot use (see :func:`why_unavailable`).
    """
    with MEMORY_SETTINGS.applied(pipe, name):
        yield MEMORY_SETTINGS[name]


def attention_processors(pipe) -> list[str]:
    """The class names of the UNet's attention processors, sorted (``AttnProcessor2_0`` is PyTorch 2's SDPA)."""
    return sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()})


def compare_memory_settings(
    pipe, names: Sequence[str] | None = None, *, warmup: bool = True, **input_kwargs
) -> Comparison:
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
    device = pipe.device  # where the memory is measured, also while an offload keeps the weights elsewhere
    return MEMORY_SETTINGS.compare(
        pipe,
        list(MEMORY_SETTINGS) if names is None else names,
        lambda label, _: timed_run(pipe, label, get_inputs(**input_kwargs), device=device),
        warm_up=(lambda: warm_up(pipe, **input_kwargs)) if warmup else None,
    )
