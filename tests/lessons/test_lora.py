"""Lesson 06's LoRA on every profile: which one, and the tiny one loaded, weighed and unloaded as diffusers does it."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import get_inputs, style_lora
from helpers.lora import (
    DIFFUSERS_LORA_FILE,
    OPENJOURNEY_LORA_FILE,
    OPENJOURNEY_LORA_ID,
    REPLICA_LORA_RANK,
    LoraSource,
    replica_lora_path,
    replica_lora_state_dict,
)
from helpers.standins.tiny import tiny_lora_path

STYLED = "a red circle in the middle on a blue sky, mdjrny-v4 style"


def test_the_real_profiles_load_prompthero_s_lora_by_hub_id():
    for profile in ("gpu", "mps", "cpu"):
        assert style_lora(profile) == LoraSource(OPENJOURNEY_LORA_ID, OPENJOURNEY_LORA_FILE)
    assert style_lora("gpu") == ("prompthero/openjourney-lora", "openjourneyLora.safetensors")


def test_the_tiny_profile_loads_the_shipped_lora():
    lora = style_lora("tiny")
    assert lora == (str(tiny_lora_path()), "pytorch_lora_weights.safetensors")
    keys = load_file(f"{lora.repo}/{lora.weight_name}")
    assert keys and all(k.startswith("unet.") and (".lora_A." in k or ".lora_B." in k) for k in keys)


def test_an_unknown_profile_is_named():
    with pytest.raises(ValueError, match=r"Unknown profile: profile='tpu'\. Use one of \['auto', 'gpu'"):
        style_lora("tpu")


def test_the_replica_lora_fits_sd15s_unet_and_is_built_once(tmp_path, monkeypatch):
    from helpers.standins.replica import replica_unet

    monkeypatch.setenv("SD_TUTORIAL_CACHE", str(tmp_path))
    lora = style_lora("replica")
    assert lora == (str(tmp_path / "replica-lora-v1"), DIFFUSERS_LORA_FILE)
    state = load_file(f"{lora.repo}/{lora.weight_name}")
    assert state.keys() == replica_lora_state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in replica_lora_state_dict().items())  # seeded: the same each time
    layers = dict(replica_unet().named_modules())  # on the meta device: names and shapes, no storage
    targets = {k.removeprefix("unet.").rsplit(".lora_", 1)[0] for k in state}
    assert len(targets) == 128  # 16 transformer blocks x 2 attentions x (q, k, v, out)
    for name in targets:
        down, up = state[f"unet.{name}.lora_A.weight"], state[f"unet.{name}.lora_B.weight"]
        assert down.shape == (REPLICA_LORA_RANK, layers[name].in_features)
        assert up.shape == (layers[name].out_features, REPLICA_LORA_RANK)
    stamp = (tmp_path / "replica-lora-v1" / DIFFUSERS_LORA_FILE).stat().st_mtime_ns
    assert replica_lora_path() == tmp_path / "replica-lora-v1"
    assert (tmp_path / "replica-lora-v1" / DIFFUSERS_LORA_FILE).stat().st_mtime_ns == stamp  # not built again


def test_the_tiny_lora_loads_weighs_and_unloads(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    inputs = {"prompt": STYLED, "num_inference_steps": 4, "height": 64, "width": 64, "output_type": "np"}

    def picture():
        return pipe(**inputs, generator=torch.Generator("cpu").manual_seed(0)).images[0]

    base = picture()
    assert np.array_equal(pipe(**{**get_inputs(prompt=STYLED, seed=0), **inputs}).images[0], base)
    lora = style_lora("tiny")
    pipe.load_lora_weights(lora.repo, weight_name=lora.weight_name, adapter_name="mdjrny")
    assert pipe.get_active_adapters() == ["mdjrny"] and pipe.get_list_adapters() == {"unet": ["mdjrny"]}
    assert sum(p.numel() for n, p in pipe.unet.named_parameters() if "lora_" in n) == sum(
        v.numel() for v in load_file(f"{lora.repo}/{lora.weight_name}").values()
    )
    full = picture()
    assert np.abs(full - base).max() * 255 > 10  # at weight 1 the LoRA changes the picture
    pipe.set_adapters(["mdjrny"], adapter_weights=[0.5])
    half = picture()
    # Half the weight, less of the style: its frame (the top rows) moves less from the base picture. (The whole
    # picture need not: at half weight the object itself may land elsewhere.)
    assert 0 < np.abs(half - base)[:2].mean() < np.abs(full - base)[:2].mean()
    pipe.set_adapters(["mdjrny"], adapter_weights=[0.0])
    assert np.array_equal(picture(), base)  # weight 0: the base model's weights alone
    pipe.set_adapters(["mdjrny"], adapter_weights=[1.0])  # at full weight again: unloading must take it out
    pipe.unload_lora_weights()
    assert pipe.get_list_adapters() == {} and not any("lora_" in n for n, _ in pipe.unet.named_parameters())
    assert np.array_equal(picture(), base)
