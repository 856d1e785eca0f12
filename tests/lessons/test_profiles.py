import pytest
import torch

from helpers import profiles
from helpers.profiles import (
    PROFILES,
    TINY_BANNER,
    activate_profile,
    available_profiles,
    check_gpu,
    current_profile,
    resolve_profile,
)


def test_the_profiles_of_the_design():
    assert available_profiles() == ["auto", "gpu", "mps", "cpu", "tiny", "replica"]
    gpu, mps, cpu, tiny = (PROFILES[n] for n in ("gpu", "mps", "cpu", "tiny"))
    assert (gpu.device, gpu.dtype, gpu.height, gpu.num_inference_steps, gpu.batch_sizes) == (
        "cuda",
        torch.float16,
        512,
        50,
        (8, 16),
    )
    assert gpu.fast_steps == 20
    assert gpu.base_model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert gpu.finetuned_model == "prompthero/openjourney"
    assert (mps.device, mps.dtype) == ("mps", torch.float32)
    assert (cpu.device, cpu.dtype) == ("cpu", torch.float32)
    assert (tiny.device, tiny.dtype, tiny.height, tiny.width) == ("cpu", torch.float32, 64, 64)
    assert tiny.batch_sizes == gpu.batch_sizes  # same lesson, smaller pictures
    assert not tiny.real_weights and gpu.real_weights


def test_env_var_overrides_auto(monkeypatch):
    monkeypatch.setenv("SD_PROFILE", "cpu")
    assert resolve_profile().name == "cpu"
    assert resolve_profile("auto").name == "cpu"


def test_explicit_name_overrides_env_var(monkeypatch):
    monkeypatch.setenv("SD_PROFILE", "cpu")
    assert resolve_profile("tiny").name == "tiny"
    assert resolve_profile("GPU").name == "gpu"  # names are case-insensitive


def test_auto_without_accelerator_picks_tiny_and_shows_the_banner_once(monkeypatch, capsys):
    monkeypatch.delenv("SD_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "detect_device", lambda: "cpu")
    monkeypatch.setattr(profiles, "_banner_shown", False)
    assert resolve_profile("auto").name == "tiny"
    out = capsys.readouterr().out
    assert "TINY MODEL" in out and "toy world" in out and "GPU" in out
    assert out.strip() == TINY_BANNER.strip()
    resolve_profile("auto")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("device", "name"), [("cuda", "gpu"), ("mps", "mps")])
def test_auto_picks_the_accelerator(monkeypatch, capsys, device, name):
    monkeypatch.delenv("SD_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "detect_device", lambda: device)
    assert resolve_profile().name == name
    assert "TINY" not in capsys.readouterr().out


def test_unknown_profile_names_the_value_and_the_choices():
    choices = r"\['auto', 'gpu', 'mps', 'cpu', 'tiny', 'replica'\]"
    with pytest.raises(ValueError, match=r"Unknown profile: profile='h100'.*" + choices):
        resolve_profile("h100")


def test_unknown_profile_from_env_var_says_so(monkeypatch):
    monkeypatch.setenv("SD_PROFILE", "cuda")
    with pytest.raises(ValueError, match=r"SD_PROFILE='cuda'.*one of"):
        resolve_profile()


def test_overrides_and_their_errors():
    assert resolve_profile("tiny", height=32).height == 32
    with pytest.raises(TypeError, match=r"Unknown profile field\(s\) \['heigth'\]"):
        resolve_profile("tiny", heigth=32)


def test_activate_sets_the_current_profile(monkeypatch):
    monkeypatch.setenv("SD_PROFILE", "tiny")
    assert current_profile().name == "tiny"  # nothing activated: auto, through the env var
    activate_profile("cpu")
    assert current_profile().name == "cpu"


def test_check_gpu_tells_what_to_do_without_one(monkeypatch, capsys):
    monkeypatch.setattr(profiles, "detect_device", lambda: "cpu")
    message = check_gpu()
    assert "Runtime > Change runtime type" in message
    assert message in capsys.readouterr().out
