import hashlib
import json

import pytest
import torch

from helpers.standins import tiny
from helpers.standins.tiny import KINDS, SD15_SCHEDULER_CONFIG, tiny_model_path, tiny_vocab


def _weights_digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.safetensors"))
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-cache")
    return root, {kind: tiny_model_path(kind, root=root) for kind in KINDS}


def test_saved_in_the_real_diffusers_layout(built):
    _, paths = built
    folder = paths["base"]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for component in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (folder / component).is_dir(), component
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (folder / "text_encoder" / "model.safetensors").exists()
    assert not list(folder.rglob("*.bin"))  # safetensors only
    assert index["safety_checker"] == [None, None]


def test_scheduler_config_is_the_real_sd15_one(built):
    _, paths = built
    config = json.loads((paths["base"] / "scheduler" / "scheduler_config.json").read_text())
    assert config["_class_name"] == "PNDMScheduler"
    for key, value in SD15_SCHEDULER_CONFIG.items():
        assert config[key] == value, key


def test_builds_are_deterministic_and_the_finetuned_one_differs(built, tmp_path):
    _, paths = built
    again = tiny_model_path("base", root=tmp_path)
    assert _weights_digest(again) == _weights_digest(paths["base"])
    assert _weights_digest(paths["finetuned"]) != _weights_digest(paths["base"])


def test_building_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny.build_tiny_pipeline("base")
    assert torch.equal(torch.rand(3), expected)


def test_a_second_call_reuses_the_build(built):
    root, paths = built
    stamp = (paths["base"] / "model_index.json").stat().st_mtime_ns
    assert tiny_model_path("base", root=root) == paths["base"]
    assert (paths["base"] / "model_index.json").stat().st_mtime_ns == stamp
    assert not [p for p in paths["base"].parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_tokenizer_covers_any_text_and_pads_to_77(tiny_pipe):
    tok = tiny_pipe.tokenizer
    assert tok.model_max_length == 77
    ids = tok("Underwater City, mdjrny-v4 style ✨", padding="max_length", truncation=True).input_ids
    assert len(ids) == 77
    assert ids[0] == tok.bos_token_id
    assert tok.unk_token_id not in ids[1 : ids.index(tok.eos_token_id)]
    assert len(tiny_vocab()) == 2 * 256 + 2


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"Unknown tiny model kind='large'; use one of \['base', 'finetuned'\]"):
        tiny_model_path("large")
