"""Speed settings on the tiny model: applied and undone by name, combined, measured, skipped with the reason."""

import pytest
import torch

from helpers import attention_processors, get_inputs, image_difference, speed
from helpers.hardware import compiler_missing
from helpers.loading import load_tiny_autoencoder
from helpers.speed import (
    SPEED_SETTINGS,
    compare_speed_settings,
    drop_fused_projections,
    fast_path_settings,
    label_of,
    other_precisions,
    speed_settings,
    speed_settings_table,
    uncompile,
    why_unavailable,
)
from helpers.speed_report import speed_chart, speed_table, speedups

FAST = {"num_inference_steps": 2, "height": 32, "width": 32}


def picture(pipe):
    return pipe(**get_inputs(**FAST)).images[0]


def test_every_setting_is_undone_and_the_pictures_come_back(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    reference = picture(pipe)
    state = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    for name in SPEED_SETTINGS:
        if why_unavailable(pipe, name) or SPEED_SETTINGS[name].compiles:  # compiling on a CPU takes minutes: below
            continue
        with speed_settings(pipe, name):
            picture(pipe)
        assert image_difference(picture(pipe), reference) == 0, name
    assert all(torch.equal(state[k], v) for k, v in pipe.unet.state_dict().items())
    assert pipe.dtype == torch.float32 and attention_processors(pipe) == ["AttnProcessor2_0"]


def test_a_lower_precision_puts_the_original_weights_back_without_copying_them(fresh_tiny_pipe):
    # The memory a learner needs for 07 on SD 1.5: the fp32 weights once, plus their bf16 copy while it is measured.
    pipe = fresh_tiny_pipe
    before = {k: (id(p), p.data_ptr()) for k, p in pipe.unet.named_parameters()}
    with speed_settings(pipe, "bfloat16"):
        assert pipe.unet.dtype == torch.bfloat16
        assert not {p.data_ptr() for p in pipe.unet.parameters()} & {ptr for _, ptr in before.values()}
    assert {k: (id(p), p.data_ptr()) for k, p in pipe.unet.named_parameters()} == before


def test_what_each_setting_changes(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    vae = pipe.vae
    with speed_settings(pipe, ["bfloat16", "classic attention"]):
        assert pipe.unet.dtype == torch.bfloat16 and attention_processors(pipe) == ["AttnProcessor"]
    with speed_settings(pipe, ["channels_last", "fused QKV projections"]):
        assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        assert attention_processors(pipe) == ["FusedAttnProcessor2_0"]
    assert pipe.unet.conv_in.weight.is_contiguous()
    with speed_settings(pipe, "tiny autoencoder"):
        assert type(pipe.vae).__name__ == "AutoencoderTiny"
        assert picture(pipe).size == (32, 32)  # decodes the same latents to the same size
    assert pipe.vae is vae


def test_compile_swaps_the_unet_and_puts_it_back_without_compiling(fresh_tiny_pipe):
    original = fresh_tiny_pipe.unet
    with speed_settings(fresh_tiny_pipe, "torch.compile"):
        assert type(fresh_tiny_pipe.unet).__name__ == "OptimizedModule"
        assert fresh_tiny_pipe.unet._orig_mod is original
    assert fresh_tiny_pipe.unet is original


def test_regional_compilation_marks_each_transformer_block_and_undoes_it_without_compiling(fresh_tiny_pipe):
    unet = fresh_tiny_pipe.unet
    blocks = [m for m in unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    assert blocks  # the tiny UNet has SD1.5's kind of attention blocks
    with speed_settings(fresh_tiny_pipe, "regional compilation"):
        assert fresh_tiny_pipe.unet is unet  # compiled in place, not wrapped
        compiled = [m for m in unet.modules() if m._compiled_call_impl is not None]
        assert compiled == blocks  # the blocks, and nothing else (torch compiles each on its first call)
    assert all(m._compiled_call_impl is None for m in unet.modules())
    assert uncompile(unet) == 0


def test_what_unfuse_leaves_behind_is_dropped(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    keys = set(pipe.unet.state_dict())
    pipe.fuse_qkv_projections()
    pipe.unfuse_qkv_projections()
    assert attention_processors(pipe) == ["AttnProcessor2_0"]
    left = set(pipe.unet.state_dict()) - keys
    assert left and all(".to_qkv." in k or ".to_kv." in k for k in left)  # diffusers 0.42 keeps the fused weights
    expected = sum(v.numel() for k, v in pipe.unet.state_dict().items() if k in left)
    assert drop_fused_projections(pipe) > expected  # the VAE's attention had its fused copy too
    assert set(pipe.unet.state_dict()) == keys and drop_fused_projections(pipe) == 0


def test_settings_are_undone_when_the_block_fails(fresh_tiny_pipe):
    with (
        pytest.raises(RuntimeError, match="boom"),
        speed_settings(fresh_tiny_pipe, ["float16", "fused QKV projections"]),
    ):
        raise RuntimeError("boom")
    assert fresh_tiny_pipe.dtype == torch.float32 and attention_processors(fresh_tiny_pipe) == ["AttnProcessor2_0"]


def test_compare_measures_each_and_skips_what_cannot_run_with_the_reason(fresh_tiny_pipe):
    timings, skipped = compare_speed_settings(
        fresh_tiny_pipe,
        ["baseline", "channels_last", ["channels_last", "fused QKV projections"], "model CPU offload"],
        reps=2,
        **FAST,
    )
    assert [t.label for t in timings] == ["baseline", "channels_last", "channels_last + fused QKV projections"]
    assert list(skipped) == ["model CPU offload"] and "accelerator" in skipped["model CPU offload"]
    assert all(t.median_seconds > 0 and len(t.seconds) == 2 for t in timings)
    factors = speedups(timings)
    assert factors[0] == 1.0 and all(f > 0 for f in factors)
    table = speed_table(timings)
    assert table.splitlines()[2].startswith("| baseline | ") and "| 1.00 |" in table.splitlines()[2]
    chart = speed_chart([timings, timings[:2]], title="t")
    assert [t.get_text() for t in chart.axes[0].get_yticklabels()] == [
        "baseline",
        "channels_last",
        "channels_last + fused QKV projections",
        "channels_last",
    ]
    with_flops = speed_table(timings, unet_step_flops=10**12, peak_tflops=100.0).splitlines()
    assert with_flops[0].endswith("| UNet TFLOP/s | % of peak |")
    rate = timings[0].median_iterations_per_second
    assert with_flops[2].endswith(f"| {rate:.3g} | {rate:.1f} |")
    one_step, _ = compare_speed_settings(fresh_tiny_pipe, ["baseline"], reps=1, **{**FAST, "num_inference_steps": 1})
    assert speed_table(one_step, 10**12, 100.0).splitlines()[2].endswith("| n/a | n/a |")  # no loop to time


def test_compile_without_a_compiler_is_skipped_with_the_reason(tiny_pipe):
    from torch._inductor import config

    assert compiler_missing("cpu") is None  # g++ is here
    # torch's own patch: pytest's monkeypatch.undo() deletes the setting, which hides it for the rest of the process
    with config.patch({"cpp.cxx": (None, "no-such-c++")}):
        reason = why_unavailable(tiny_pipe, ["channels_last", "torch.compile"])
        assert "C++ compiler" in reason and "no-such-c++" in reason
        timings, skipped = compare_speed_settings(tiny_pipe, [["channels_last", "torch.compile"]], **FAST)
        assert timings == [] and skipped == {"channels_last + torch.compile": reason}
        with pytest.raises(RuntimeError, match=r"Cannot apply 'torch.compile': torch.compile on a CPU needs a C\+\+"):
            with speed_settings(tiny_pipe, "torch.compile"):
                pass
    assert compiler_missing("cpu") is None  # put back for the tests after this one


def test_names_and_tables():
    assert label_of(["channels_last", "torch.compile"]) == "channels_last + torch.compile"
    with pytest.raises(ValueError, match=r"Unknown speed setting name='xformers'; use one of \['baseline', "):
        label_of("xformers")
    with pytest.raises(ValueError, match=r"give a non-empty list of setting names"):
        compare_speed_settings(None, "baseline")
    assert speed_settings_table(["fused QKV projections"]).splitlines()[2] == (
        "| fused QKV projections | `pipe.fuse_qkv_projections()  # experimental in diffusers` |"
    )
    assert SPEED_SETTINGS["VAE slicing"].code == "pipe.vae.enable_slicing()"  # the memory settings, reused


def test_precisions_worth_comparing_on_a_cpu(tiny_pipe, monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_native", lambda dtype: True)  # a CPU with bfloat16 instructions
    assert other_precisions(tiny_pipe) == (["bfloat16"], {})
    monkeypatch.setattr(speed, "cpu_has_native", lambda dtype: dtype == torch.float32)  # AVX2 only
    names, left_out = other_precisions(tiny_pipe)
    assert names == [] and list(left_out) == ["bfloat16"]
    assert left_out["bfloat16"].startswith("this CPU has no bfloat16 instructions")
    assert "set emulated=True to measure it anyway" in left_out["bfloat16"]
    assert other_precisions(tiny_pipe, emulated=True) == (["bfloat16"], {})


def test_the_fast_path_compiles_on_a_gpu_only_unless_asked(tiny_pipe):
    settings, left_out = fast_path_settings(tiny_pipe)
    assert settings == ["channels_last", "fused QKV projections"]
    assert list(left_out) == [
        "torch.compile",
        "regional compilation",
        "channels_last + fused QKV projections + torch.compile",
    ]
    assert "compile_unet=True" in left_out["torch.compile"]
    assert fast_path_settings(tiny_pipe, compile_unet=True) == (
        [
            "channels_last",
            "fused QKV projections",
            "torch.compile",
            "regional compilation",
            ["channels_last", "fused QKV projections", "torch.compile"],
        ],
        {},
    )
    assert set(fast_path_settings(tiny_pipe, compile_unet=False)[1].values()) == {"compile_unet=False"}


def test_the_tiny_autoencoder_stand_in_is_seeded_and_the_real_one_needs_the_hub():
    a, b = load_tiny_autoencoder(real_weights=False), load_tiny_autoencoder(real_weights=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    from helpers.loading import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError, match=r"madebyollin/taesd"):
        load_tiny_autoencoder(real_weights=True)  # offline in the tests
