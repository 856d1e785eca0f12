"""Speed settings of a pipeline: apply one (or several) by name, undo them afterwards, and measure each.

Each setting is the line a learner would write (``pipe.fuse_qkv_projections()``,
``pipe.unet = torch.compile(pipe.unet, ...)``) plus how to undo it, so that one pipeline can be measured under
many settings in turn. The memory settings of :mod:`helpers.memory` are offered here too, by the same names.
A setting that cannot run on this machine (CPU offload without an accelerator, ``torch.compile`` without a
compiler) is never silently dropped: :func:`compare_speed_settings` returns it with the reason.

Example:
    >>> with speed_settings(pipe, ["channels_last", "fused QKV projections"]):
    ...     attention_processors(pipe)
    ['FusedAttnProcessor2_0']
    >>> attention_processors(pipe)
    ['AttnProcessor2_0']
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from . import memory
from .charts import bar_chart
from .profiles import current_profile
from .timing import Timing, time_pipeline

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# torch.compile's mode: the diffusers docs' choice on CUDA (autotuned kernels and CUDA graphs), plain on a CPU,
# where autotuning would take far longer.
COMPILE_MODES = {"cuda": "max-autotune", "cpu": "default", "mps": "default"}


@dataclass(frozen=True)
class SpeedSetting:
    """A named setting: the code a learner writes, a context manager that applies and undoes it, and a check."""

    code: str
    use: Callable  # use(pipe) -> context manager: applied inside the block, undone after it
    unavailable: Callable  # unavailable(pipe) -> the reason it cannot run here, or None
    compiles: bool = False  # its first call compiles: warm up at least twice to see the compile time apart


def _available(pipe) -> None:
    return None


def _device(pipe) -> str:
    return getattr(pipe, "_execution_device", pipe.device).type


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


def _precision(dtype: torch.dtype):
    @contextlib.contextmanager
    def use(pipe):
        before = pipe.dtype
        if before == dtype:
            yield
            return
        # fp16/bf16 -> fp32 -> back is exact; anything else loses bits, so keep a copy of the weights to restore.
        lossless = dtype == torch.float32
        saved = (
            {}
            if lossless
            else {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in _modules(pipe).items()}
        )
        with _quiet_cast_warnings():
            pipe.to(dtype=dtype)
        try:
            yield
        finally:
            with _quiet_cast_warnings():
                pipe.to(dtype=before)
            for name, state in saved.items():
                _modules(pipe)[name].load_state_dict(state)

    return use


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


def _precision_unavailable(dtype: torch.dtype):
    def unavailable(pipe) -> str | None:
        if dtype == torch.bfloat16 and _device(pipe) == "cuda" and not torch.cuda.is_bf16_supported():
            return f"bfloat16 needs an Ampere or newer GPU; this one ({torch.cuda.get_device_name()}) has none"
        return None

    return unavailable


@contextlib.contextmanager
def _classic_attention(pipe):
    from diffusers.models.attention_processor import AttnProcessor

    models = [m for m in (pipe.unet, pipe.vae) if hasattr(m, "set_attn_processor")]
    saved = [dict(m.attn_processors) for m in models]
    for model in models:
        model.set_attn_processor(AttnProcessor())
    try:
        yield
    finally:
        for model, processors in zip(models, saved, strict=True):
            model.set_attn_processor(processors)


@contextlib.contextmanager
def _channels_last(pipe):
    pipe.unet.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        pipe.unet.to(memory_format=torch.contiguous_format)


@contextlib.contextmanager
def _fused_projections(pipe):
    pipe.fuse_qkv_projections()
    try:
        yield
    finally:
        pipe.unfuse_qkv_projections()
        # diffusers 0.42 only switches the processors back and keeps the fused copies of the weights: drop them,
        # so that the memory and the state dict are what they were.
        for model in (pipe.unet, pipe.vae):
            for module in model.modules():
                if getattr(module, "fused_projections", False):
                    for name in ("to_qkv", "to_kv", "to_added_qkv"):
                        if hasattr(module, name):
                            delattr(module, name)
                    module.fused_projections = False


def compile_mode(device: str) -> str:
    """The ``torch.compile`` mode used on ``device`` (see :data:`COMPILE_MODES`)."""
    return COMPILE_MODES.get(device, "default")


@contextlib.contextmanager
def _compiled_unet(pipe):
    original = pipe.unet
    pipe.unet = torch.compile(original, mode=compile_mode(_device(pipe)), fullgraph=True)
    try:
        yield
    finally:
        pipe.unet = original
        torch._dynamo.reset()  # forget the compiled graphs, and the memory they hold


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


def _compile_unavailable(pipe) -> str | None:
    return compiler_missing(_device(pipe))


def load_tiny_autoencoder(
    dtype: torch.dtype = torch.float32, device="cpu", *, real_weights: bool | None = None, levels: int = 4
):
    """TAESD (diffusers' ``AutoencoderTiny``): the Hub's ``madebyollin/taesd`` with real weights, else a stand-in.

    Args:
        real_weights: True loads from the Hub (or its cache); False builds the random-weight stand-in of the same
            architecture (:mod:`helpers.standins.tiny_autoencoder`); None follows the active profile.
        levels: for the stand-in, the resolution levels of the VAE it replaces (4 for SD1.5 and the tiny model).
    """
    from .standins.tiny_autoencoder import HUB_ID, random_tiny_autoencoder

    if real_weights is None:
        real_weights = current_profile().real_weights
    if not real_weights:
        return random_tiny_autoencoder(device=device, dtype=dtype, levels=levels)
    from diffusers import AutoencoderTiny

    from .loading import fetch

    return fetch(AutoencoderTiny.from_pretrained, HUB_ID, "hub", {"dtype": dtype, "use_safetensors": True}).to(device)


@contextlib.contextmanager
def _tiny_autoencoder(pipe):
    original = pipe.vae
    levels = len(original.config.block_out_channels)
    with _quiet_cast_warnings():
        pipe.vae = load_tiny_autoencoder(
            pipe.dtype, pipe.device, real_weights=levels == 4 and current_profile().real_weights, levels=levels
        )
    try:
        yield
    finally:
        pipe.vae = original


def _memory(name: str) -> SpeedSetting:
    return SpeedSetting(
        memory.MEMORY_SETTINGS[name].code,
        lambda pipe: memory.memory_setting(pipe, name),
        lambda pipe: memory.why_unavailable(pipe, name),
    )


SPEED_SETTINGS: dict[str, SpeedSetting] = {
    "baseline": SpeedSetting(
        "# nothing: the profile's precision, SDPA attention", lambda pipe: contextlib.nullcontext(), _available
    ),
    **{
        name: SpeedSetting(f"pipe.to(dtype=torch.{name})", _precision(dtype), _precision_unavailable(dtype))
        for name, dtype in DTYPES.items()
    },
    "classic attention": SpeedSetting(
        "pipe.unet.set_attn_processor(AttnProcessor())  # and pipe.vae's", _classic_attention, _available
    ),
    **{name: _memory(name) for name in memory.MEMORY_SETTINGS if name != "baseline"},
    "channels_last": SpeedSetting("pipe.unet.to(memory_format=torch.channels_last)", _channels_last, _available),
    "fused QKV projections": SpeedSetting("pipe.fuse_qkv_projections()", _fused_projections, _available),
    "torch.compile": SpeedSetting(
        'pipe.unet = torch.compile(pipe.unet, fullgraph=True)  # mode="max-autotune" on a GPU',
        _compiled_unet,
        _compile_unavailable,
        compiles=True,
    ),
    "tiny autoencoder": SpeedSetting(
        'pipe.vae = AutoencoderTiny.from_pretrained("madebyollin/taesd", dtype=pipe.dtype)',
        _tiny_autoencoder,
        _available,
    ),
}


def _names(names: str | Sequence[str]) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError(f"give at least one setting name, e.g. ['channels_last']; use any of {list(SPEED_SETTINGS)}")
    for name in names:
        if name not in SPEED_SETTINGS:
            raise ValueError(f"Unknown speed setting name={name!r}; use one of {list(SPEED_SETTINGS)}")
    return names


def label_of(names: str | Sequence[str]) -> str:
    """A row label for one setting or a combination: ``"channels_last + torch.compile"``."""
    return " + ".join(_names(names))


def why_unavailable(pipe, names: str | Sequence[str]) -> str | None:
    """Why the setting (or any of a combination) cannot run on this pipeline's device, or None if it can.

    Example:
        >>> why_unavailable(pipe, "model CPU offload")  # a pipeline on the CPU
        'model CPU offload moves each model to an accelerator only while it runs; ...'
    """
    for name in _names(names):
        reason = SPEED_SETTINGS[name].unavailable(pipe)
        if reason:
            return reason
    return None


def compiles(names: str | Sequence[str]) -> bool:
    """Whether the setting, or any of a combination, compiles on its first call."""
    return any(SPEED_SETTINGS[name].compiles for name in _names(names))


@contextlib.contextmanager
def speed_settings(pipe, names: str | Sequence[str]) -> Iterator[list[str]]:
    """Apply one setting or several in order inside the block; undo them in reverse order after it, even on error.

    Raises:
        ValueError: an unknown name.
        RuntimeError: a setting that cannot run here (see :func:`why_unavailable`); nothing is applied then.
    """
    names = _names(names)
    reason = why_unavailable(pipe, names)
    if reason:
        raise RuntimeError(f"Cannot apply {label_of(names)!r}: {reason}")
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(SPEED_SETTINGS[name].use(pipe))
        yield names


def speed_settings_table(names: Sequence[str] | None = None) -> str:
    """A Markdown table of settings and the code that applies each.

    Example:
        >>> speed_settings_table(["fused QKV projections"]).splitlines()[2]
        '| fused QKV projections | `pipe.fuse_qkv_projections()` |'
    """
    rows = [f"| {name} | `{SPEED_SETTINGS[name].code}` |" for name in (_names(names) if names else SPEED_SETTINGS)]
    return "\n".join(["| setting | code |", "| --- | --- |", *rows])


def other_precisions(pipe, emulated: bool = False) -> tuple[list[str], dict[str, str]]:
    """The precisions worth comparing with the pipeline's own on its device (its own left out), and those left out.

    On a CUDA GPU: float16, float32, and bfloat16 where the GPU has it; on a CPU: float32 and bfloat16 (the
    CPU's half format; float16 arithmetic is rarely fast on CPUs); on Apple's MPS: float32 and float16.

    Args:
        emulated: also give a half format that this CPU has no instructions for (:func:`cpu_has_native`). PyTorch
            then emulates it: the pictures are right, but it is many times slower than float32, so it is left
            out unless asked.

    Returns:
        ``(names, left_out)``: the settings to compare, and ``{name: reason}`` for those left out, as
        :func:`fast_path_settings` does.

    Example:
        >>> other_precisions(pipe)  # the tiny model, float32, on a CPU without bfloat16 instructions
        ([], {'bfloat16': 'this CPU has no bfloat16 instructions (...): PyTorch would emulate it, ...'})
    """
    wanted = {
        "cuda": ["float16", "float32", "bfloat16"],
        "cpu": ["float32", "bfloat16"],
        "mps": ["float32", "float16"],
    }.get(_device(pipe), ["float32"])
    names, left_out = [], {}
    for name in wanted:
        if DTYPES[name] == pipe.dtype or SPEED_SETTINGS[name].unavailable(pipe):
            continue
        if _device(pipe) == "cpu" and not emulated and not cpu_has_native(DTYPES[name]):
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
        compile_unet: whether to include ``torch.compile`` (alone, and with channels_last and fused QKV
            projections); None includes it on a CUDA GPU only, since compiling takes minutes on a CPU.

    Example:
        >>> fast_path_settings(pipe)[0]  # on a CPU
        ['channels_last', 'fused QKV projections']
    """
    settings: list = ["channels_last", "fused QKV projections"]
    compiled = ["torch.compile", ["channels_last", "fused QKV projections", "torch.compile"]]
    device = _device(pipe)
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
) -> tuple[list[Timing], dict[str, str]]:
    """Time the same inputs under each setting (a name, or a list of names applied together) in turn.

    Args:
        settings: e.g. ``["baseline", "channels_last", ["channels_last", "torch.compile"]]``; the first is the
            reference of :func:`speedups`.
        reps, warmup: as in :func:`helpers.timing.time_pipeline`; settings that compile get two warm-up calls
            at least, so that their compile time shows apart (``Timing.first_call_extra_seconds``).
        **input_kwargs: for :func:`helpers.get_inputs`, e.g. ``batch_size=1``, ``num_inference_steps=20``.

    Returns:
        ``(timings, skipped)``: one :class:`helpers.timing.Timing` per setting that ran, labelled as
        :func:`label_of` writes it, and ``{label: reason}`` for those this machine cannot run.
    """
    if isinstance(settings, str) or not settings:
        raise ValueError(f"settings must be a non-empty list of setting names (or lists of names), got {settings!r}")
    timings, skipped = [], {}
    for names in settings:
        label = label_of(names)
        reason = why_unavailable(pipe, names)
        if reason:
            skipped[label] = reason
            continue
        with speed_settings(pipe, names):
            calls = max(warmup, 2) if compiles(names) else warmup
            timings.append(time_pipeline(pipe, label, reps=reps, warmup=calls, **input_kwargs))
    return timings, skipped


def speedups(timings: Sequence[Timing]) -> list[float]:
    """How many times faster than the first timing each one is, per picture (1.0 for the first)."""
    if not timings:
        raise ValueError("timings is empty: give the result of compare_speed_settings")
    reference = timings[0].seconds_per_image
    return [reference / t.seconds_per_image for t in timings]


def _or_na(value: float, fmt: str = "{:.3g}") -> str:
    """A number, or "n/a" for NaN (the loop's speed needs two steps at least)."""
    return "n/a" if value != value else fmt.format(value)


def speed_table(timings: Sequence[Timing], unet_step_flops: int | None = None, peak_tflops: float | None = None) -> str:
    """A Markdown table: seconds per picture, it/s, speed-up against the first row, peak memory, first-call extra.

    Args:
        unet_step_flops: the FLOPs of one guided step (:func:`helpers.flops.pipeline_flops`); adds the UNet's
            achieved TFLOP/s (FLOPs per step times it/s).
        peak_tflops: the device's peak (:func:`helpers.flops.peak_tflops`); adds the share of it.

    Example:
        >>> print(speed_table(timings).splitlines()[0])
        | setting | s / picture | it/s | x faster | peak MiB | memory measured | first call extra s |
    """
    head = "| setting | s / picture | it/s | x faster | peak MiB | memory measured | first call extra s |"
    rule = "| --- | ---: | ---: | ---: | ---: | --- | ---: |"
    if unet_step_flops:
        head, rule = head + " UNet TFLOP/s |", rule + " ---: |"
        if peak_tflops:
            head, rule = head + " % of peak |", rule + " ---: |"
    lines = [head, rule]
    for timing, factor in zip(timings, speedups(timings), strict=True):
        extra = "" if timing.first_call_extra_seconds is None else f"{timing.first_call_extra_seconds:.1f}"
        speed = timing.median_iterations_per_second
        line = (
            f"| {timing.label} | {timing.seconds_per_image:.3g} | {_or_na(speed)} "
            f"| {factor:.2f} | {timing.peak_mib:,.0f} | {timing.memory_kind} | {extra} |"
        )
        if unet_step_flops:
            rate = unet_step_flops * speed / 1e12
            line += f" {_or_na(rate)} |"
            if peak_tflops:
                line += f" {_or_na(100 * rate / peak_tflops, '{:.1f}')} |"
        lines.append(line)
    return "\n".join(lines)


def speed_chart(sections: Sequence[Sequence[Timing]], title: str = ""):
    """Bars of how many times faster each setting is than the baseline timed with it, and of seconds per picture.

    Args:
        sections: lists of timings, each starting with its own baseline (as :func:`compare_speed_settings`
            returns them for ``["baseline", ...]``): measured close together, so that a machine whose load
            changes in between still compares like with like. The first section's baseline is the chart's.
    """
    if not sections or not all(sections):
        raise ValueError("sections must be non-empty lists of timings, each starting with its baseline")
    first = sections[0][0]
    labels, factors, seconds = [first.label], [1.0], [first.seconds_per_image]
    for section in sections:
        for timing, factor in zip(section[1:], speedups(section)[1:], strict=True):
            labels.append(timing.label)
            factors.append(factor)
            seconds.append(timing.seconds_per_image)
    return bar_chart(
        labels,
        {"x faster than baseline": factors, "seconds per picture": seconds},
        title=title,
        value_format={"x faster than baseline": "{:.2f}", "seconds per picture": "{:.3g}"},
    )
