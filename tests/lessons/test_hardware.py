"""The probes behind the speed settings: what this CPU computes natively, compilers, compile modes."""

import torch

from helpers.hardware import compile_mode, compiler_missing, cpu_has_native, execution_device, precision_missing


def test_this_cpus_half_formats_are_what_onednn_reports():
    assert cpu_has_native(torch.float32)
    assert cpu_has_native(torch.bfloat16) == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert cpu_has_native(torch.float16) == torch.ops.mkldnn._is_mkldnn_fp16_supported()


def test_every_precision_runs_on_a_cpu(tiny_pipe):
    assert execution_device(tiny_pipe) == "cpu"
    assert all(precision_missing(dtype, "cpu") is None for dtype in (torch.float32, torch.float16, torch.bfloat16))


def test_a_gpu_without_bfloat16_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "Tesla T4")
    assert precision_missing(torch.bfloat16, "cuda") == (
        "bfloat16 needs an Ampere or newer GPU; this one (Tesla T4) has none"
    )
    assert precision_missing(torch.float16, "cuda") is None


def test_compile_modes_and_the_compiler_here():
    assert (compile_mode("cuda"), compile_mode("cpu"), compile_mode("xpu")) == ("max-autotune", "default", "default")
    assert compiler_missing("cpu") is None  # g++ is here
    assert compiler_missing("mps") is None  # nothing to check: torch.compile says for itself
