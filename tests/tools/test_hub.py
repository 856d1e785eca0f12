"""The local Hub (olah, offline) serves the stand-in repositories as the Hub does, quirk included."""

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from tools import hub as hub_tool
from tools.local_hub import OLAH_VERSION, OPENJOURNEY_ID, OPENJOURNEY_LORA_ID, REPOS, SD15_ID, LocalHub, olah_python


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def test_olah_is_the_pinned_version():
    code = "import importlib.metadata as m; print(m.version('olah'))"
    version = subprocess.run([str(olah_python()), "-c", code], capture_output=True, text=True, check=True).stdout
    assert version.strip() == OLAH_VERSION


def test_the_fixture_serves_every_repository_with_its_head(local_hub, monkeypatch):
    import os

    assert os.environ["HF_ENDPOINT"] == local_hub.endpoint
    assert os.environ["HF_HUB_OFFLINE"] == "0" and not any(local_hub.hf_home.iterdir())
    for repo_id in REPOS:
        status, info = _get(f"{local_hub.endpoint}/api/models/{repo_id}")
        assert status == 200, repo_id
        assert info["sha"] == local_hub.heads[repo_id]
    files = {s["rfilename"] for s in _get(f"{local_hub.endpoint}/api/models/{SD15_ID}")[1]["siblings"]}
    weights = ["unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model"]
    weights.append("safety_checker/model")
    assert {f"{w}{v}.safetensors" for w in weights for v in ("", ".fp16")} <= files
    assert {"tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json"} <= files
    assert "feature_extractor/preprocessor_config.json" in files
    files = {s["rfilename"] for s in _get(f"{local_hub.endpoint}/api/models/{OPENJOURNEY_ID}")[1]["siblings"]}
    assert "unet/diffusion_pytorch_model.bin" in files and not any(".fp16." in f for f in files)
    files = {s["rfilename"] for s in _get(f"{local_hub.endpoint}/api/models/{OPENJOURNEY_LORA_ID}")[1]["siblings"]}
    assert files == {"README.md", "openjourneyLora.safetensors"}  # one LoRA file at the root, as PromptHero's
    pid = local_hub.pid
    local_hub.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_olah_still_has_the_offline_quirk_we_work_around(tmp_path):
    """If this fails, a new olah answers /api/models/<id> offline by itself: drop write_meta_heads."""
    with LocalHub(workdir=tmp_path, fix_meta_heads=False) as hub:
        assert _get(f"{hub.endpoint}/api/models/{SD15_ID}/revision/main")[0] == 200
        assert _get(f"{hub.endpoint}/api/models/{SD15_ID}")[0] == 401


def test_make_hub_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        hub_tool.parse_args(["--port", "70000"])
    assert "--port=70000 is not a port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        hub_tool.parse_args(["--host", "0.0.0.0"])
    assert "--host 0.0.0.0 needs --netloc" in capsys.readouterr().err


def test_make_hub_without_olah_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setenv("SD_OLAH_PYTHON", "/nonexistent/python")
    assert hub_tool.main(["--port", "0"]) == 1
    assert "make hub-setup" in capsys.readouterr().err


def test_retrained_tiny_models_are_published_afresh(tmp_path, monkeypatch):
    from tools import local_hub

    (tmp_path / "tiny-sd" / "unet").mkdir(parents=True)
    weights, card = tmp_path / "tiny-sd" / "unet" / "diffusion_pytorch_model.safetensors", tmp_path / "README.md"
    weights.write_bytes(b"weights")
    card.write_text("a card")
    monkeypatch.setattr(local_hub, "models_root", lambda: tmp_path)
    before = local_hub.models_digest()
    card.write_text("another card")  # not what the repositories are built from
    assert local_hub.models_digest() == before
    weights.write_bytes(b"retrained weights")
    assert local_hub.models_digest() != before
