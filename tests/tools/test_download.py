import pytest

from helpers.loading import ModelNotAvailableError
from tools.download import download, main


def test_tiny_needs_no_download():
    with pytest.raises(ValueError, match=r"profile='tiny' uses the tiny test model.*use profile='gpu'"):
        download(profile="tiny")


def test_unreachable_hub_says_how_to_fetch(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match=r"model_id='nobody-here/no-such-model'.*hf download"):
        download(["nobody-here/no-such-model"])


def test_a_local_folder_is_already_there(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path / "m")
    assert download([str(tmp_path / "m")], profile="cpu") == {str(tmp_path / "m"): str(tmp_path / "m")}


def test_command_line_reports_failure_with_exit_code_1(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["nobody-here/no-such-model"]) == 1
    assert "error: Could not load model_id='nobody-here/no-such-model'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--profile", "tiny"])  # argparse refuses: only profiles with real weights


def test_check_names_lesson_06s_lora_when_the_cache_lacks_it(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from tools.download import check

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    report = check(profile="gpu")
    assert report["prompthero/openjourney-lora"] == ["openjourneyLora.safetensors is not in the Hugging Face cache"]
    assert report["stable-diffusion-v1-5/stable-diffusion-v1-5"] == ["is not in the Hugging Face cache"]
    assert check(["stable-diffusion-v1-5/stable-diffusion-v1-5"], profile="gpu").keys() == {
        "stable-diffusion-v1-5/stable-diffusion-v1-5"
    }  # models named on the command line: only those
