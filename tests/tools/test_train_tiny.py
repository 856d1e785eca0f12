"""``make train-tiny``: the whole recipe runs as a real process (a few steps of each stage), resumes, and writes the
models in the Hub's layout that ``from_pretrained`` and ``load_lora_weights`` take."""

import json
import subprocess
import sys

import pytest
import torch
from diffusers import StableDiffusionPipeline

from helpers.standins.tiny import KINDS, LORA_FOLDER
from tools import ROOT
from tools.train_tiny import Recipe

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work, out = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("models")
    command = [sys.executable, "-m", "tools.train_tiny", "--quick", "--work", str(work), "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    done.timing = json.loads((out / "training.json").read_text())  # before the resuming test writes it again
    return work, out, command, done


def test_every_stage_is_saved_and_the_models_written(trained):
    work, out, _, done = trained
    for stage in ("autoencoder", "base", "autoencoder-refined", "base-resumed", "finetuned", "lora"):
        assert (work / stage).is_dir(), stage
    assert "done in" in done.stdout
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["base_steps"] == 3 and set(recipe) == set(Recipe.__dataclass_fields__)


def test_a_second_run_resumes_from_the_saved_stages(trained):
    work, _, command, _ = trained
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "training" not in again.stdout and "encoding" not in again.stdout  # every stage was already there


def test_the_models_load_and_draw(trained):
    _, out, _, _ = trained
    pipe = StableDiffusionPipeline.from_pretrained(out / KINDS["base"]["folder"])
    assert pipe.unet.dtype == torch.float32  # half precision on disk, float32 when loaded
    pipe.load_lora_weights(out / LORA_FOLDER, adapter_name="style")
    pipe.set_progress_bar_config(disable=True)
    picture = pipe("a red ball", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert picture.size == (64, 64)
    card = (out / KINDS["finetuned"]["folder"] / "README.md").read_text()
    assert "prompthero/openjourney" in card and "mdjrny-v4 style" in card


def test_the_run_says_how_long_it_took_and_whether_it_resumed(trained):
    _, out, command, done = trained
    assert done.timing["minutes"] > 0 and "threads" in done.timing["machine"]
    assert done.timing["resumed"] is False  # the first run started from nothing
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and json.loads((out / "training.json").read_text())["resumed"] is True


def test_the_evaluation_quotes_the_training_and_fills_the_model_cards(trained, tmp_path):
    from PIL import Image

    from tools import eval_tiny

    _, out, _, _ = trained
    training = eval_tiny.training_summary(out)
    stages = ["autoencoder", "base", "autoencoder-refined", "base-resumed", "finetuned", "lora"]
    assert list(training["stages"]) == stages
    assert training["recipe"]["base_steps"] == 3
    # The run's own record (the tests above ran it again: resuming every stage can take under 3 s, 0.0 minutes)
    assert training["run"] == json.loads((out / "training.json").read_text()) and "minutes" in training["run"]
    text = eval_tiny.training_text(training)
    assert "`make train-tiny` made these models in" in text and "| base |" in text
    share = {"colour": 0.9, "position": 0.8, "background": 1.0, "all": 0.7}
    report = {
        "date": "2026-12-04", "held_out_captions": 80, "schedulers": {"same_scene": 0.85},
        "settings": {"scheduler": "PNDMScheduler", "num_inference_steps": 10, "size": "64x64", "fast_steps": 5},
        "accuracy_by_guidance": {"1.0": {**share, "all": 0.3}, "7.5": share},
        "accuracy_by_sampler": {"DPMSolverMultistepScheduler, 10 steps": {**share, "colour": 0.95}},
        "style": {"finetuned_with_trigger": 0.95, "finetuned_without_trigger": 0.05, "base_with_trigger": 0.0},
        "autoencoder": {"plain": {**share, "colour": 0.96, "style_kept": 1.0}},
    }  # fmt: skip
    grid = tmp_path / "grid.png"
    Image.new("RGB", (8, 8)).save(grid)
    for _ in range(2):  # a second evaluation replaces the section, it does not add another
        eval_tiny.update_model_cards(out, report, grid)
    base_card = (out / KINDS["base"]["folder"] / "README.md").read_text()
    assert base_card.count(eval_tiny.LEARNED) == 1 and "the object's colour is right in 90%" in base_card
    assert "with DPM-Solver++ in 10 steps: colour 95%" in base_card
    assert "as PNDMScheduler in 10 in 85% of pictures" in base_card
    assert "round trip of the world's own pictures keeps the object's colour in 96%" in base_card
    assert base_card.startswith("# tiny-sd") and "Run `make eval-tiny`." not in base_card
    tuned_card = (out / KINDS["finetuned"]["folder"] / "README.md").read_text()
    assert "95% of pictures with the trigger word and in 5% without" in tuned_card
    assert (out / KINDS["finetuned"]["folder"] / "samples.png").is_file()
