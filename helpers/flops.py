"""Counting the work: FLOPs of a guided UNet step and of a VAE decode, and how much of a GPU's peak a run reached.

The counts come from PyTorch's own :class:`torch.utils.flop_counter.FlopCounterMode`, run on a copy of the model
on the *meta* device: every tensor has its shape but no storage, so counting SD1.5's UNet takes about a second
and allocates nothing, whatever the device and precision of the model you pass. No hand-written formulas.

Example:
    >>> from helpers.standins.replica import replica_unet
    >>> round(unet_step_flops(replica_unet(), batch_size=1, height=512, width=512) / 1e12, 3)  # guided: 2 latents
    1.607
    >>> peak_tflops("NVIDIA H100 80GB HBM3")
    ('H100 SXM', 989.4)
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

META = torch.device("meta")

# Dense (no sparsity) FP16 tensor-core peaks from NVIDIA's datasheets, in TFLOP/s; BF16 is the same on these
# GPUs (the T4 has no BF16). (pattern on torch.cuda.get_device_name(), name, TFLOP/s); the first match wins.
PEAK_FP16_TFLOPS: tuple[tuple[str, str, float], ...] = (
    (r"\bH200\b(?!.*NVL)", "H200 SXM", 989.4),
    (r"\bH100\b.*PCIe", "H100 PCIe", 756.5),
    (r"\bH100\b(?!.*(PCIe|NVL))", "H100 SXM", 989.4),
    (r"\bA100\b", "A100", 312.0),
    (r"\bL4\b", "L4", 121.0),
    (r"\bT4\b", "T4", 65.0),
)


def meta_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A new module of the same class and config as ``module`` (a diffusers model), on the meta device.

    A ``torch.compile``-d module is looked through (its ``_orig_mod``). Fused projections, attention processors,
    precision and device are not copied: the copy is the plain model, which does the same arithmetic.
    """
    module = getattr(module, "_orig_mod", module)
    config = getattr(module, "config", None)
    if config is None or not hasattr(type(module), "from_config"):
        raise TypeError(
            f"meta_copy needs a diffusers model with a config (e.g. pipe.unet, pipe.vae), got {type(module).__name__}"
        )
    # Only what __init__ takes: some models record derived values in their config too (AutoencoderTiny's
    # block_out_channels), which from_config would warn about.
    accepted = inspect.signature(type(module).__init__).parameters
    with META:
        return type(module).from_config({k: v for k, v in dict(config).items() if k in accepted})


def count_flops(fn: Callable[[], object]) -> int:
    """The floating-point operations ``fn()`` performs, as PyTorch's FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _config_key(module: torch.nn.Module) -> str:
    module = getattr(module, "_orig_mod", module)
    config = {k: v for k, v in dict(module.config).items() if not k.startswith("_")}
    return type(module).__name__ + json.dumps(config, sort_keys=True, default=str)


def _check_size(batch_size: int, height: int, width: int, factor: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got batch_size={batch_size}")
    if height % factor or width % factor or height < factor or width < factor:
        raise ValueError(f"height and width must be positive multiples of {factor}, got height={height}, width={width}")


def unet_step_flops(
    unet: torch.nn.Module,
    batch_size: int,
    height: int,
    width: int,
    *,
    guided: bool = True,
    text_length: int = 77,
    vae_scale_factor: int = 8,
) -> int:
    """FLOPs of one denoising step of ``unet`` for ``batch_size`` pictures of ``height`` x ``width`` pixels.

    With classifier-free guidance (``guided``, the pipelines' default) the UNet sees every latent twice, with and
    without the prompt, so one step is a UNet call on ``2 * batch_size`` latents. The latents are the picture
    divided by ``vae_scale_factor`` (8 for SD1.5); the text is ``text_length`` tokens (77).
    """
    _check_size(batch_size, height, width, vae_scale_factor)
    n = batch_size * (2 if guided else 1)
    return _unet_flops(_config_key(unet), unet, n, height // vae_scale_factor, width // vae_scale_factor, text_length)


_unet_cache: dict[tuple, int] = {}
_vae_cache: dict[tuple, int] = {}


def _unet_flops(key: str, unet, n: int, h: int, w: int, text_length: int) -> int:
    cache_key = (key, n, h, w, text_length)
    if cache_key not in _unet_cache:
        copy = meta_copy(unet)
        cfg = copy.config
        latents = torch.empty(n, cfg.in_channels, h, w, device=META)
        text = torch.empty(n, text_length, cfg.cross_attention_dim, device=META)
        timesteps = torch.full((n,), 10, device=META)
        _unet_cache[cache_key] = count_flops(lambda: copy(latents, timesteps, encoder_hidden_states=text))
    return _unet_cache[cache_key]


def vae_decode_flops(
    vae: torch.nn.Module, batch_size: int, height: int, width: int, *, vae_scale_factor: int = 8
) -> int:
    """FLOPs of decoding ``batch_size`` latents into ``height`` x ``width`` pictures with ``vae``.

    Works for ``AutoencoderKL`` (SD1.5's VAE) and ``AutoencoderTiny`` (the preview decoder) alike.
    """
    _check_size(batch_size, height, width, vae_scale_factor)
    cache_key = (_config_key(vae), batch_size, height, width, vae_scale_factor)
    if cache_key not in _vae_cache:
        copy = meta_copy(vae)
        channels = copy.config.latent_channels
        latents = torch.empty(batch_size, channels, height // vae_scale_factor, width // vae_scale_factor, device=META)
        _vae_cache[cache_key] = count_flops(lambda: copy.decode(latents))
    return _vae_cache[cache_key]


def pipeline_flops(pipe, batch_size: int, height: int, width: int, *, guided: bool = True) -> dict[str, int]:
    """``{"unet_step": ..., "vae_decode": ...}``: the FLOPs of one guided step and of the decode, for ``pipe``.

    Example:
        >>> pipeline_flops(pipe, 1, 64, 64)["unet_step"] > 0
        True
    """
    factor = getattr(pipe, "vae_scale_factor", 8)
    text_length = getattr(pipe.tokenizer, "model_max_length", 77)
    return {
        "unet_step": unet_step_flops(
            pipe.unet, batch_size, height, width, guided=guided, text_length=text_length, vae_scale_factor=factor
        ),
        "vae_decode": vae_decode_flops(pipe.vae, batch_size, height, width, vae_scale_factor=factor),
    }


def peak_tflops(device_name: str | None = None) -> tuple[str, float] | None:
    """``(GPU model, dense fp16 TFLOP/s)`` for a CUDA device name, or None when the table does not know it.

    Args:
        device_name: e.g. ``torch.cuda.get_device_name()``; None asks torch for GPU 0 (None without CUDA).
    """
    if device_name is None:
        if not torch.cuda.is_available():
            return None
        device_name = torch.cuda.get_device_name(0)
    for pattern, name, tflops in PEAK_FP16_TFLOPS:
        if re.search(pattern, device_name):
            return name, tflops
    return None


def tflops_per_second(flops: float, seconds: float) -> float:
    """Achieved TFLOP/s: ``flops`` done in ``seconds`` (NaN when the time is not positive)."""
    return flops / seconds / 1e12 if seconds > 0 else float("nan")
