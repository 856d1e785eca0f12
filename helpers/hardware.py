"""What this machine can do fast: the probes behind the speed settings of :mod:`helpers.speed`.

Whether the CPU has instructions of its own for the half formats, whether the GPU has bfloat16, whether
``torch.compile`` finds a compiler for the device, and which compile mode suits it. Each probe that can say no
says why, in words a learner can act on.

Example:
    >>> cpu_has_native(torch.float32), compile_mode("cuda"), compile_mode("cpu")
    (True, 'max-autotune', 'default')
"""

from __future__ import annotations

import shutil

import torch

# torch.compile's mode: the diffusers docs' choice on CUDA (autotuned kernels and CUDA graphs), plain on a CPU,
# where autotuning would take far longer.
COMPILE_MODES = {"cuda": "max-autotune", "cpu": "default", "mps": "default"}


def execution_device(pipe) -> str:
    """Where the pipeline computes (``"cuda"``, ``"cpu"``, ...), also while a CPU offload keeps its weights in RAM.

    Example:
        >>> execution_device(pipe)
        'cpu'
    """
    return getattr(pipe, "_execution_device", pipe.device).type


def cpu_has_native(dtype: torch.dtype) -> bool:
    """Whether this CPU computes in ``dtype`` with instructions of its own (float32 always; bfloat16 and float16
    with AVX512-BF16 / AVX512-FP16 / AMX on x86, or the Arm extensions), as PyTorch's oneDNN backend reports.

    Without them PyTorch emulates the half formats: correct, but many times slower than float32 (a bfloat16
    picture of the SD1.5 replica took 25 times as long as a float32 one on an AVX2-only CPU).
    """
    checks = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}
    if dtype not in checks:
        return True
    try:
        return bool(getattr(torch.ops.mkldnn, checks[dtype])())
    except (AttributeError, RuntimeError):  # a PyTorch build without oneDNN: no fast half formats either
        return False


def precision_missing(dtype: torch.dtype, device: str) -> str | None:
    """Why ``device`` cannot compute in ``dtype`` at all, or None when it can (slowly perhaps: see
    :func:`cpu_has_native`).

    Example:
        >>> precision_missing(torch.bfloat16, "cpu") is None
        True
    """
    # Not torch.cuda.is_bf16_supported(): it also answers True where bfloat16 is only emulated (a T4, say).
    if dtype == torch.bfloat16 and device == "cuda" and torch.cuda.get_device_capability()[0] < 8:
        return f"bfloat16 needs an Ampere or newer GPU; this one ({torch.cuda.get_device_name()}) has none"
    return None


def compile_mode(device: str) -> str:
    """The ``torch.compile`` mode used on ``device`` (see :data:`COMPILE_MODES`)."""
    return COMPILE_MODES.get(device, "default")


def repeated_blocks_missing(model) -> str | None:
    """Why ``model.compile_repeated_blocks()`` (regional compilation) has nothing to compile, or None when it has.

    diffusers compiles the blocks whose class names a model class lists in ``_repeated_blocks``;
    ``UNet2DConditionModel`` (SD1.5's UNet) lists ``BasicTransformerBlock``, the transformer layer in each of its
    attention blocks.

    Example:
        >>> repeated_blocks_missing(pipe.unet) is None
        True
    """
    names = list(getattr(model, "_repeated_blocks", None) or [])
    if not names:
        return f"{type(model).__name__} declares no _repeated_blocks, so regional compilation has nothing to compile"
    if not any(type(module).__name__ in names for module in model.modules()):
        return f"{type(model).__name__} has none of its _repeated_blocks {names}: nothing to compile"
    return None


def compiler_missing(device: str) -> str | None:
    """Why ``torch.compile`` cannot build kernels for ``device`` here, or None when it can."""
    if device == "cpu":
        from torch._inductor import config

        candidates = [c for c in config.cpp.cxx if c] if isinstance(config.cpp.cxx, tuple | list) else [config.cpp.cxx]
        if not any(shutil.which(c) for c in candidates):
            return (
                f"torch.compile on a CPU needs a C++ compiler and none of {candidates} was found; install one "
                f"(Debian/Ubuntu: apt-get install g++) or set CXX to its path"
            )
    if device == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return "torch.compile on a CUDA GPU needs Triton (pip install triton), which is not installed"
    return None
