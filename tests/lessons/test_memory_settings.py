"""Memory settings on the tiny model: applied and undone by name, measured, skipped where they cannot run."""

import pytest
import torch

from helpers import (
    MEMORY_SETTINGS,
    attention_processors,
    compare_memory_settings,
    get_inputs,
    image_difference,
    memory_settings_table,
)
from helpers.memory import memory_setting, why_unavailable

FAST = {"num_inference_steps": 2, "height": 32, "width": 32}


def test_the_settings_of_the_lesson_in_order():
    assert list(MEMORY_SETTINGS) == [
        "baseline",
        "attention slicing",
        "VAE slicing",
        "VAE tiling",
        "model CPU offload",
        "sequential CPU offload",
    ]
    # diffusers 0.42 spells it on the VAE; pipe.enable_vae_slicing() is gone.
    assert MEMORY_SETTINGS["VAE slicing"].code == "pipe.vae.enable_slicing()"
    assert memory_settings_table().splitlines()[3] == "| attention slicing | `pipe.enable_attention_slicing()` |"


def test_each_setting_is_applied_inside_and_undone_after(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    assert attention_processors(pipe) == ["AttnProcessor2_0"]  # PyTorch 2's SDPA
    with memory_setting(pipe, "attention slicing"):
        assert attention_processors(pipe) == ["SlicedAttnProcessor"]
    assert attention_processors(pipe) == ["AttnProcessor2_0"]
    for name, flag in (("VAE slicing", "use_slicing"), ("VAE tiling", "use_tiling")):
        with memory_setting(pipe, name):
            assert getattr(pipe.vae, flag) is True
        assert getattr(pipe.vae, flag) is False


def test_a_setting_is_undone_even_when_the_block_fails(fresh_tiny_pipe):
    with pytest.raises(RuntimeError, match="boom"), memory_setting(fresh_tiny_pipe, "VAE tiling"):
        raise RuntimeError("boom")
    assert fresh_tiny_pipe.vae.use_tiling is False


def test_model_offload_is_refused_on_the_cpu_with_the_reason(tiny_pipe):
    reason = why_unavailable(tiny_pipe, "model CPU offload")
    assert "accelerator" in reason and "CPU" in reason
    assert why_unavailable(tiny_pipe, "VAE slicing") is None
    with pytest.raises(RuntimeError, match=r"Cannot apply 'model CPU offload': .*accelerator"):
        with memory_setting(tiny_pipe, "model CPU offload"):
            pass


def test_without_an_accelerator_diffusers_refuses_the_offloads_and_changes_nothing(fresh_tiny_pipe):
    """What lesson 05 shows on a machine without an accelerator: diffusers' own call raises, before any change."""
    if torch.accelerator.is_available():
        pytest.skip("this machine has an accelerator: diffusers offloads to it")
    pipe = fresh_tiny_pipe
    for name, method in (
        ("model CPU offload", "enable_model_cpu_offload"),
        ("sequential CPU offload", "enable_sequential_cpu_offload"),
    ):
        with pytest.raises(RuntimeError, match=f"`{method}` requires accelerator, but not found"):
            getattr(pipe, method)()
        assert f"pipe.{method}() raises RuntimeError" in why_unavailable(pipe, name)
    assert pipe.device.type == "cpu" and not hasattr(pipe.unet, "_hf_hook")


def test_model_offload_is_undone_with_the_weights_back_in_place(fresh_tiny_pipe):
    # Refused on a CPU pipeline (see above), but diffusers runs it when handed the CPU as the "accelerator":
    # enough to check that undoing it puts every weight back where it was, with its values. (Sequential offload
    # fails that way inside accelerate, whose tied-weight bookkeeping mixes up the CPU copies; it needs a GPU.)
    pipe, setting = fresh_tiny_pipe, MEMORY_SETTINGS["model CPU offload"]
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    reference = pipe(**get_inputs(**FAST)).images[0]
    saved = setting.apply(pipe)  # what why_unavailable would refuse: offload to the pipeline's own device, the CPU
    try:
        assert image_difference(pipe(**get_inputs(**FAST)).images[0], reference) < 1
    finally:
        setting.undo(pipe, saved)
    assert not hasattr(pipe.unet, "_hf_hook")
    after = pipe.unet.state_dict()
    assert {v.device.type for v in after.values()} == {"cpu"}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert image_difference(pipe(**get_inputs(**FAST)).images[0], reference) == 0


def test_unknown_setting_lists_the_known_ones(tiny_pipe):
    with pytest.raises(ValueError, match=r"Unknown memory setting name='xformers'; use one of \['baseline', "):
        with memory_setting(tiny_pipe, "xformers"):
            pass
    with pytest.raises(ValueError, match=r"Unknown memory setting name='fp8'"):
        compare_memory_settings(tiny_pipe, ["baseline", "fp8"])
    with pytest.raises(ValueError, match=r"give a non-empty list of setting names .*, got 'baseline'"):
        compare_memory_settings(tiny_pipe, "baseline")


def test_compare_measures_what_runs_and_says_what_it_skipped(fresh_tiny_pipe):
    runs, skipped = compare_memory_settings(
        fresh_tiny_pipe, ["baseline", "VAE slicing", "model CPU offload"], batch_size=2, seed=1, warmup=False, **FAST
    )
    assert [run.label for run in runs] == ["baseline", "VAE slicing"]
    assert list(skipped) == ["model CPU offload"]
    assert all(len(run.images) == 2 and run.peak_mib > 0 for run in runs)
    assert runs[0].measurement.memory_kind == "process RSS"
    # Slicing changes how the batch is decoded, not what: the same seeds give the same pictures.
    assert all(image_difference(a, b) < 1 for a, b in zip(runs[0].images, runs[1].images, strict=True))
    assert fresh_tiny_pipe.vae.use_slicing is False


@pytest.mark.gpu
def test_model_offload_on_cuda_lowers_the_peak_and_is_undone():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from helpers import load_pipeline

    pipe = load_pipeline(profile="tiny", device="cuda")
    runs, skipped = compare_memory_settings(pipe, ["baseline", "model CPU offload"], batch_size=2, **FAST)
    assert skipped == {}
    assert runs[1].peak_mib < runs[0].peak_mib
    assert pipe.device.type == "cuda" and not hasattr(pipe.unet, "_hf_hook")
