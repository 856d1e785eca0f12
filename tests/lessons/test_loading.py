import json

import pytest
import torch

from helpers import activate_profile, from_pretrained_call, load_pipeline
from helpers.loading import ModelNotAvailableError, NoSafetensorsError, load_kwargs, pretrained_source, resolve_model
from helpers.profiles import PROFILES


def test_tiny_profile_with_no_arguments_gives_the_tiny_base_pipeline_on_cpu(monkeypatch):
    monkeypatch.setenv("SD_PROFILE", "tiny")
    pipe = load_pipeline()
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert pipe.device.type == "cpu" and pipe.dtype == torch.float32
    assert pipe.name_or_path.endswith("tiny-sd")
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"  # the tiny model's default (SD1.5: PNDM)
    assert pipe.safety_checker is None  # the tiny model has none; real models keep theirs


def test_finetuned_stand_in_and_dtype_override():
    pipe = load_pipeline("tiny:finetuned", profile="tiny", dtype=torch.bfloat16)
    assert pipe.name_or_path.endswith("tiny-openjourney")
    assert pipe.unet.dtype == torch.bfloat16


def test_the_active_profile_is_used():
    activate_profile("tiny")
    assert load_pipeline().device.type == "cpu"


def test_a_local_folder_loads(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path / "my-model")
    pipe = load_pipeline(tmp_path / "my-model", profile="tiny")
    assert pipe.unet.config.block_out_channels == tiny_pipe.unet.config.block_out_channels


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model_id='\./no-such-folder' is a local folder that does not exist"):
        load_pipeline("./no-such-folder", profile="tiny")


def test_folder_that_is_not_a_pipeline_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"folder without model_index.json"):
        load_pipeline(str(tmp_path / "empty"), profile="tiny")


def test_model_neither_cached_nor_reachable_says_how_to_fetch_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        load_pipeline("nobody-here/no-such-model", profile="tiny")
    message = str(info.value)
    assert "model_id='nobody-here/no-such-model'" in message
    assert "not in the local Hugging Face cache" in message
    assert "make download" in message and "SD_PROFILE=tiny" in message
    assert isinstance(info.value, OSError)


def test_unknown_profile_is_named():
    with pytest.raises(ValueError, match=r"Unknown profile: profile='fast'"):
        load_pipeline(profile="fast")


def test_unknown_tiny_model_is_named():
    with pytest.raises(ValueError, match=r"Unknown tiny model model_id='tiny:large'.*tiny:base"):
        load_pipeline("tiny:large", profile="tiny")


def test_old_torch_dtype_spelling_gets_the_new_one():
    with pytest.raises(TypeError, match=r"dtype=, not torch_dtype=.*dtype=torch.float16"):
        load_pipeline(profile="tiny", torch_dtype=torch.float16)


def test_gpu_loading_asks_for_fp16_files_safetensors_and_keeps_the_safety_checker():
    gpu = PROFILES["gpu"]
    where, kind = resolve_model(None, gpu)
    assert (where, kind) == ("stable-diffusion-v1-5/stable-diffusion-v1-5", "hub")
    kwargs = load_kwargs(kind, where, gpu.dtype)
    assert kwargs == {"dtype": torch.float16, "use_safetensors": True, "variant": "fp16"}
    assert "safety_checker" not in kwargs
    assert "variant" not in load_kwargs(kind, where, PROFILES["cpu"].dtype)


def test_fp16_variant_only_for_local_folders_that_have_it(tiny_pipe, tmp_path):
    plain, halves = tmp_path / "plain", tmp_path / "halves"
    tiny_pipe.save_pretrained(plain)
    tiny_pipe.save_pretrained(halves, variant="fp16")
    gpu = PROFILES["gpu"]
    assert "variant" not in load_kwargs("local", str(plain), gpu.dtype)
    assert load_kwargs("local", str(halves), gpu.dtype)["variant"] == "fp16"
    pipe = load_pipeline(halves, profile="tiny", dtype=torch.float16)  # loads the fp16 files on the CPU
    assert pipe.unet.dtype == torch.float16
    assert json.loads((halves / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"


def test_from_pretrained_call_writes_out_what_load_pipeline_runs():
    assert from_pretrained_call(profile="gpu") == (
        'StableDiffusionPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5", '
        'dtype=torch.float16, variant="fp16", use_safetensors=True).to("cuda")'
    )
    tiny = from_pretrained_call(profile="tiny")
    assert tiny.endswith('models/tiny-sd", dtype=torch.float32, use_safetensors=True).to("cpu")')
    assert "variant" not in from_pretrained_call("prompthero/openjourney", profile="cpu")


def test_pretrained_source_is_what_load_pipeline_loads(tiny_pipe):
    from diffusers import StableDiffusionPipeline

    assert pretrained_source(profile="gpu") == ("stable-diffusion-v1-5/stable-diffusion-v1-5", "fp16")
    assert pretrained_source("prompthero/openjourney", profile="cpu") == ("prompthero/openjourney", None)
    where, variant = pretrained_source(profile="tiny")
    assert variant is None and where == tiny_pipe.name_or_path
    pipe = StableDiffusionPipeline.from_pretrained(where, dtype=torch.float32, variant=variant, use_safetensors=True)
    for name in ("unet", "vae", "text_encoder"):
        mine, helpers_own = getattr(pipe, name).state_dict(), getattr(tiny_pipe, name).state_dict()
        assert mine.keys() == helpers_own.keys() and all(torch.equal(mine[k], helpers_own[k]) for k in mine), name


def test_pickle_only_weights_are_refused_unless_asked_for(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path / "pickled", safe_serialization=False)
    assert not list((tmp_path / "pickled" / "unet").glob("*.safetensors"))  # the UNet only as a pickle
    with pytest.raises(NoSafetensorsError, match=r"has no safetensors weights.*use_safetensors=None"):
        load_pipeline(tmp_path / "pickled", profile="tiny")
    pipe = load_pipeline(tmp_path / "pickled", profile="tiny", use_safetensors=None)  # the explicit opt-in
    assert pipe.unet.config.block_out_channels == tiny_pipe.unet.config.block_out_channels
