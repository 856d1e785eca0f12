"""The probes behind the speed settings: what this CPU computes natively, compilers, compile modes, the blocks that
regional compilation compiles."""

import torch

from helpers.hardware import (
    compile_mode,
    compiler_missing,
    cpu_has_native,
    execution_device,
    precision_missing,
    repeated_blocks_missing,
)


def test_this_cpus_half_formats_are_what_onednn_reports():
    assert cpu_has_native(torch.float32)
    assert cpu_has_native(torch.bfloat16) == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert cpu_has_native(torch.float16) == torch.ops.mkldnn._is_mkldnn_fp16_supported()


def test_every_precision_runs_on_a_cpu(tiny_pipe):
    assert execution_device(tiny_pipe) == "cpu"
    assert all(precision_missing(dtype, "cpu") is None for dtype in (torch.float32, torch.float16, torch.bfloat16))


def test_a_gpu_without_bfloat16_is_named_even_where_torch_emulates_it(monkeypatch):
    # A T4 (compute capability 7.5): torch.cuda.is_bf16_supported() answers True there, as it emulates bfloat16.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    assert precision_missing(torch.bfloat16, "cuda") == (
        "bfloat16 needs an Ampere or newer GPU; this one (Tesla T4) has none"
    )
    assert precision_missing(torch.float16, "cuda") is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # an A100
    assert precision_missing(torch.bfloat16, "cuda") is None


def test_the_unet_declares_the_blocks_that_regional_compilation_compiles(tiny_pipe):
    from diffusers import UNet2DConditionModel

    assert UNet2DConditionModel._repeated_blocks == ["BasicTransformerBlock"]  # as diffusers 0.42 declares it
    assert repeated_blocks_missing(tiny_pipe.unet) is None
    assert repeated_blocks_missing(tiny_pipe.vae) == (
        "AutoencoderKL declares no _repeated_blocks, so regional compilation has nothing to compile"
    )

    class Declares(torch.nn.Module):
        _repeated_blocks = ["BasicTransformerBlock"]

    assert repeated_blocks_missing(Declares()) == (
        "Declares has none of its _repeated_blocks ['BasicTransformerBlock']: nothing to compile"
    )


def test_compile_modes_and_the_compiler_here():
    assert (compile_mode("cuda"), compile_mode("cpu"), compile_mode("xpu")) == ("max-autotune", "default", "default")
    assert compiler_missing("cpu") is None  # g++ is here
    assert compiler_missing("mps") is None  # nothing to check: torch.compile says for itself
