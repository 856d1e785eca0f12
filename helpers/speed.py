"""Speed settings of a pipeline: apply one (or several) by name, undo them afterwards, and measure each.

Each setting is the line a learner would write (``pipe.fuse_qkv_projections()``,
``pipe.unet = torch.compile(pipe.unet, ...)``, ``pipe.unet.compile_repeated_blocks(fullgraph=True)``) plus how to
undo it, so that one pipeline can be measured under many settings in turn. They form a
:class:`helpers.settings.Settings` registry, the same kind as the memory settings of :mod:`helpers.memory`, which
are offered here too, by the same names. A setting that cannot run on this machine (CPU offload without an
accelerator, ``torch.compile`` without a compiler: see :mod:`helpers.hardware`) is never silently dropped:
:func:`compare_speed_settings` returns it with the reason.
:mod:`helpers.speed_report` turns the timings into tables and charts.

Example:
    >>> with speed_settings(pipe, ["channels_last", "fused QKV projections"]):
    ...     attention_processors(pipe)
    ['FusedAttnProcessor2_0']
    >>> attention_processors(pipe)
    ['AttnProcessor2_0']
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence

import torch

from .hardware import (
    compile_mode,
    compiler_missing,
    cpu_has_native,
    execution_device,
    precision_missing,
    repeated_blocks_missing,
)
from .loading import load_tiny_autoencoder
from .memory import MEMORY_SETTINGS
from .profiles import current_profile
from .settings import Comparison, Setting, Settings
from .timing import time_pipeline

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _modules(pipe) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in pipe.components.items() if isinstance(m, torch.nn.Module)}


@contextlib.contextmanager
def _quiet_cast_warnings() -> Iterator[None]:
    """diffusers warns on every ``model.to(dtype)`` about fp32-only modules; SD1.5 has none (the list is empty)."""
    from diffusers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(before)


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(itertools.chain(module.named_parameters(), module.named_buffers()))


def _precision(name: str, dtype: torch.dtype) -> Setting:
    """``pipe.to(dtype=...)``; undone exactly, with the original weights put back where the round trip would lose
    bits.

    ``pipe.to`` gives each weight a new tensor of the new precision and leaves the old one alone, so keeping the old
    tensors costs no copy: the weights exist once in each precision while the setting is on (SD 1.5 in fp32 and
    bf16: 5.2 GB and 2.6 GB), where copying them first would hold them twice in fp32 as well.
    """

    def apply(pipe):
        before = pipe.dtype
        if before == dtype:
            return None
        # fp16/bf16 -> fp32 -> back is exact; anything else loses bits, so keep the original tensors to restore.
        lossless = dtype == torch.float32
        saved = {} if lossless else {n: {k: t.data for k, t in _tensors(m).items()} for n, m in _modules(pipe).items()}
        with _quiet_cast_warnings():
            pipe.to(dtype=dtype)
        return before, saved

    def undo(pipe, state) -> None:
        if state is None:
            return
        before, saved = state
        modules = _modules(pipe)
        for module_name, originals in saved.items():  # the original tensors back, no new copy
            tensors = _tensors(modules[module_name])
            for key, original in originals.items():
                tensors[key].data = original
        with _quiet_cast_warnings():
            pipe.to(dtype=before)  # the rest (a lossless round trip); a no-op where everything was put back

    return Setting(
        name,
        f"pipe.to(dtype=torch.{name})",
        apply,
        undo,
        lambda pipe: precision_missing(dtype, execution_device(pipe)),
    )


def _classic_attention(pipe):
    from diffusers.models.attention_processor import AttnProcessor

    models = [m for m in (pipe.unet, pipe.vae) if hasattr(m, "set_attn_processor")]
    saved = [(model, dict(model.attn_processors)) for model in models]
    for model in models:
        model.set_attn_processor(AttnProcessor())
    return saved


def _restore_attention(pipe, saved) -> None:
    for model, processors in saved:
        model.set_attn_processor(processors)


def drop_fused_projections(pipe) -> int:
    """Free the fused weights that diffusers 0.42's ``pipe.unfuse_qkv_projections()`` leaves behind.

    ``pipe.fuse_qkv_projections()`` adds to each attention layer one matrix holding its query, key and value
    weights side by side (``to_qkv``; ``to_kv`` for cross-attention). ``pipe.unfuse_qkv_projections()`` switches
    the attention processors back to the separate ones but keeps those matrices, in memory and in the state dict.
    This deletes them. Call it after ``pipe.unfuse_qkv_projections()``; while the processors are the fused ones
    they need the matrices.

    Returns:
        How many weights (parameters) it freed; 0 when nothing was fused.

    Example:
        >>> pipe.fuse_qkv_projections()
        >>> pipe.unfuse_qkv_projections()
        >>> drop_fused_projections(pipe) > 0, drop_fused_projections(pipe)
        (True, 0)
    """
    freed = 0
    for model in (pipe.unet, pipe.vae):
        for module in model.modules():
            if getattr(module, "fused_projections", False):
                for name in ("to_qkv", "to_kv", "to_added_qkv"):
                    if hasattr(module, name):
                        freed += sum(p.numel() for p in getattr(module, name).parameters())
                        delattr(module, name)
                module.fused_projections = False
    return freed


def _unfuse_projections(pipe) -> None:
    pipe.unfuse_qkv_projections()
    drop_fused_projections(pipe)  # so that the memory and the state dict are what they were


def uncompile(model: torch.nn.Module) -> int:
    """Undo ``module.compile()`` on ``model`` and every module inside it: they run eagerly again.

    ``model.compile_repeated_blocks(...)`` (regional compilation) calls ``block.compile(...)`` on each repeated
    block, which compiles it in place; PyTorch has no public call that undoes that, so this clears what
    ``nn.Module.compile`` sets. (A model wrapped by ``torch.compile(model)`` is undone by keeping the original.)

    Returns:
        How many modules were compiled in place.
    """
    compiled = [m for m in model.modules() if getattr(m, "_compiled_call_impl", None) is not None]
    for module in compiled:
        module._compiled_call_impl = None
    return len(compiled)


def _compile_unet(pipe):
    original = pipe.unet
    pipe.unet = torch.compile(original, mode=compile_mode(execution_device(pipe)), fullgraph=True)
    return original


def _uncompile_unet(pipe, original) -> None:
    pipe.unet = original
    torch._dynamo.reset()  # forget the compiled graphs, and the memory they hold


def _compile_regions(pipe) -> None:
    # The call of diffusers' guide, PyTorch's default mode on every device. With mode="max-autotune", the SD1.5
    # replica's blocks took 293 s to compile on an H200 (512 px, batch 1, fp16) and ran slower than eager.
    pipe.unet.compile_repeated_blocks(fullgraph=True)


def _uncompile_regions(pipe, saved) -> None:
    uncompile(pipe.unet)
    torch._dynamo.reset()


def _regions_missing(pipe) -> str | None:
    return compiler_missing(execution_device(pipe)) or repeated_blocks_missing(pipe.unet)


def _tiny_autoencoder(pipe):
    original = pipe.vae
    levels = len(original.config.block_out_channels)
    with _quiet_cast_warnings():
        pipe.vae = load_tiny_autoencoder(
            pipe.dtype, pipe.device, real_weights=levels == 4 and current_profile().real_weights, levels=levels
        )
    return original


def _put_back_vae(pipe, original) -> None:
    pipe.vae = original


SPEED_SETTINGS = Settings(
    "speed",
    [
        Setting.baseline("# nothing: the profile's precision, SDPA attention"),
        *(_precision(name, dtype) for name, dtype in DTYPES.items()),
        Setting(
            "classic attention",
            "pipe.unet.set_attn_processor(AttnProcessor())  # and pipe.vae's",
            _classic_attention,
            _restore_attention,
        ),
        *(setting for name, setting in MEMORY_SETTINGS.items() if name != "baseline"),
        Setting.toggle(
            "channels_last",
            "pipe.unet.to(memory_format=torch.channels_last)",
            lambda pipe: pipe.unet.to(memory_format=torch.channels_last),
            lambda pipe: pipe.unet.to(memory_format=torch.contiguous_format),
        ),
        Setting.toggle(
            "fused QKV projections",
            "pipe.fuse_qkv_projections()  # experimental in diffusers",
            lambda pipe: pipe.fuse_qkv_projections(),
            _unfuse_projections,
        ),
        Setting(
            "torch.compile",
            'pipe.unet = torch.compile(pipe.unet, fullgraph=True)  # mode="max-autotune" on a GPU',
            _compile_unet,
            _uncompile_unet,
            lambda pipe: compiler_missing(execution_device(pipe)),
            compiles=True,
        ),
        Setting(
            "regional compilation",
            "pipe.unet.compile_repeated_blocks(fullgraph=True)",
            _compile_regions,
            _uncompile_regions,
            _regions_missing,
            compiles=True,
        ),
        Setting(
            "tiny autoencoder",
            'pipe.vae = AutoencoderTiny.from_pretrained("madebyollin/taesd", dtype=pipe.dtype)',
            _tiny_autoencoder,
            _put_back_vae,
        ),
    ],
)

# The registry's methods, by the names the lessons and the bench use.
speed_settings = SPEED_SETTINGS.applied
speed_settings_table = SPEED_SETTINGS.table
why_unavailable = SPEED_SETTINGS.why_unavailable
label_of = SPEED_SETTINGS.label
compiles = SPEED_SETTINGS.compiles


def other_precisions(pipe, emulated: bool = False) -> tuple[list[str], dict[str, str]]:
    """The precisions worth comparing with the pipeline's own on its device (its own left out), and those left out.

    On a CUDA GPU: float16, float32, and bfloat16 where the GPU has it; on a CPU: float32 and bfloat16 (the
    CPU's half format; float16 arithmetic is rarely fast on CPUs); on Apple's MPS: float32 and float16.

    Args:
        emulated: also give a half format that this CPU has no instructions for
            (:func:`helpers.hardware.cpu_has_native`). PyTorch then emulates it: the pictures are right, but it is
            many times slower than float32, so it is left out unless asked.

    Returns:
        ``(names, left_out)``: the settings to compare, and ``{name: reason}`` for those left out, as
        :func:`fast_path_settings` does.

    Example:
        >>> other_precisions(pipe, emulated=True)  # the tiny model: float32, on a CPU
        (['bfloat16'], {})
    """
    device = execution_device(pipe)
    wanted = {
        "cuda": ["float16", "float32", "bfloat16"],
        "cpu": ["float32", "bfloat16"],
        "mps": ["float32", "float16"],
    }.get(device, ["float32"])
    names, left_out = [], {}
    for name in wanted:
        if DTYPES[name] == pipe.dtype or SPEED_SETTINGS[name].why_unavailable(pipe):
            continue
        if device == "cpu" and not emulated and not cpu_has_native(DTYPES[name]):
            left_out[name] = (
                f"this CPU has no {name} instructions (AVX512-BF16 or AMX on x86, BF16 on Arm): PyTorch would "
                f"emulate it, many times slower than float32; set emulated=True to measure it anyway"
            )
            continue
        names.append(name)
    return names, left_out


def fast_path_settings(pipe, compile_unet: bool | None = None) -> tuple[list, dict[str, str]]:
    """The fast path's settings, one by one and together, and ``{label: reason}`` for those left out.

    Args:
        compile_unet: whether to include the compilations: ``torch.compile`` of the whole UNet (alone, and with
            channels_last and fused QKV projections) and regional compilation; None includes them on a CUDA GPU
            only, since compiling takes minutes on a CPU.

    Example:
        >>> fast_path_settings(pipe)[0]  # on a CPU
        ['channels_last', 'fused QKV projections']
    """
    settings: list = ["channels_last", "fused QKV projections"]
    compiled = [
        "torch.compile",
        "regional compilation",
        ["channels_last", "fused QKV projections", "torch.compile"],
    ]
    device = execution_device(pipe)
    if compile_unet is None:
        compile_unet = device == "cuda"
        why = f"left out on {device}, where compiling takes minutes: set compile_unet=True to measure it"
    else:
        why = "compile_unet=False"
    if compile_unet:
        return settings + compiled, {}
    return settings, {label_of(names): why for names in compiled}


def compare_speed_settings(
    pipe,
    settings: Sequence[str | Sequence[str]],
    *,
    reps: int = 3,
    warmup: int = 1,
    **input_kwargs,
) -> Comparison:
    """Time the same inputs under each setting (a name, or a list of names applied together) in turn.

    Args:
        settings: e.g. ``["baseline", "channels_last", ["channels_last", "torch.compile"]]``; the first is the
            reference of :func:`helpers.speed_report.speedups`.
        reps, warmup: as in :func:`helpers.timing.time_pipeline`; settings that compile get two warm-up calls
            at least, so that their compile time shows apart (``Timing.first_call_extra_seconds``).
        **input_kwargs: for :func:`helpers.get_inputs`, e.g. ``batch_size=1``, ``num_inference_steps=20``.

    Returns:
        ``(timings, skipped)``: one :class:`helpers.timing.Timing` per setting that ran, labelled as
        :func:`label_of` writes it, and ``{label: reason}`` for those this machine cannot run.

    Example:
        >>> timings, skipped = compare_speed_settings(pipe, ["baseline", "model CPU offload"], num_inference_steps=1)
        >>> [t.label for t in timings], list(skipped)  # a CPU offload needs an accelerator
        (['baseline'], ['model CPU offload'])
    """

    def measure(label: str, names: list[str]):
        calls = max(warmup, 2) if compiles(names) else warmup
        return time_pipeline(pipe, label, reps=reps, warmup=calls, **input_kwargs)

    return SPEED_SETTINGS.compare(pipe, settings, measure)
