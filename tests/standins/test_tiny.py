"""The shipped tiny models: in the Hub's layout, small, loaded by ``from_pretrained`` as the real model is."""

import json

import pytest
import torch

from helpers.standins import tiny, world
from helpers.standins.tiny import KINDS, SD15_SCHEDULER_CONFIG, models_root, tiny_lora_path, tiny_model_path


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_shipped_in_the_hubs_layout(kind):
    folder = tiny_model_path(kind)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for component in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (folder / component).is_dir(), component
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (folder / "text_encoder" / "model.safetensors").exists()
    assert not list(folder.rglob("*.bin"))  # safetensors only
    assert index["safety_checker"] == [None, None]
    card = (folder / "README.md").read_text()
    assert KINDS[kind]["stands_in_for"] in card and "make train-tiny" in card


def test_the_scheduler_has_sd15s_noise_schedule_with_eulers_update():
    for kind in ("base", "finetuned"):
        config = json.loads((tiny_model_path(kind) / "scheduler" / "scheduler_config.json").read_text())
        assert config["_class_name"] == "EulerDiscreteScheduler"  # SD1.5's PNDM draws the tiny models poorly
        for key, value in SD15_SCHEDULER_CONFIG.items():
            if key != "_class_name":
                assert config[key] == value, key


def test_everything_shipped_fits_in_32_mb():
    size = sum(p.stat().st_size for p in models_root().rglob("*") if p.is_file())
    assert size <= 32 * 2**20, f"{size / 2**20:.1f} MB"


def test_the_autoencoder_scaling_factor_was_measured_not_copied():
    config = json.loads((tiny_model_path("base") / "vae" / "config.json").read_text())
    assert config["scaling_factor"] != 0.18215 and 0.05 < config["scaling_factor"] < 2


def test_half_precision_on_disk_loads_as_float32_by_default():
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    with safe_open(tiny_model_path("base") / "unet" / "diffusion_pytorch_model.safetensors", "pt") as weights:
        assert weights.get_tensor(next(iter(weights.keys()))).dtype == torch.float16
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_path("base"))  # as a learner might, without dtype
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.float32}


def test_the_fine_tuned_model_shares_the_base_models_autoencoder_and_has_its_own_unet_and_text_encoder():
    vae = "vae/diffusion_pytorch_model.safetensors"
    assert (tiny_model_path("base") / vae).read_bytes() == (tiny_model_path("finetuned") / vae).read_bytes()
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):  # both fine-tuned
        assert (tiny_model_path("base") / part).read_bytes() != (tiny_model_path("finetuned") / part).read_bytes()


def test_the_lora_is_in_diffusers_format():
    assert (tiny_lora_path() / "pytorch_lora_weights.safetensors").exists()


def test_the_tokenizer_knows_the_worlds_words_and_pads_to_77(tiny_pipe):
    tok = tiny_pipe.tokenizer
    assert tok.model_max_length == 77
    ids = tok("Underwater City, mdjrny-v4 style ✨", padding="max_length", truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == tok.bos_token_id
    assert tok.unk_token_id not in ids[1 : ids.index(tok.eos_token_id)]
    for word in ("red", "left", "meadow", "warrior", "mdjrny"):
        assert len(tok.tokenize(word)) == 1, word
    assert len(tok.tokenize(world.SCENES["city"])) == 2


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"Unknown tiny model kind='large'; use one of \['base', 'finetuned'\]"):
        tiny_model_path("large")


def test_a_missing_model_says_how_to_get_it_back(monkeypatch, tmp_path):
    monkeypatch.setattr(tiny, "models_root", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"git checkout -- helpers/standins/models.*make train-tiny"):
        tiny_model_path("base")
