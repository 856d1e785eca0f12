"""The playground without a browser: set the widgets' values, click its buttons, check what it made and shows.

The same tests pass with ipywidgets 7.7.1, Colab's version (see docs/maintaining.md, "Checking the playground on
Colab's ipywidgets"):
    pip install --target /tmp/ipyw7 --no-deps ipywidgets==7.7.1 ipython_genutils==0.2.0
    PYTHONPATH=/tmp/ipyw7 .venv/bin/python -m pytest tests/lessons/test_playground.py
"""

import io
import json
import re

import ipywidgets
import pytest
import torch
from PIL import Image

from helpers import get_inputs, image_difference, read_metadata
from helpers.playground import MAX_SEED, TINY_NOTICE, Creation, Playground, _explain, caption

STEPS = 2  # enough to run every part of the pipeline, few enough to keep the tests fast


@pytest.fixture
def playground(fresh_tiny_pipe, tmp_path):
    return Playground(fresh_tiny_pipe, num_inference_steps=STEPS, output_dir=tmp_path / "saved", notebook="00_test")


def shown(playground) -> Image.Image:
    """The picture the playground shows, decoded from the PNG the browser gets."""
    return Image.open(io.BytesIO(playground.picture.value))


def generate(playground, **values):
    for name, value in values.items():
        getattr(playground, name).value = value
    playground.generate_button.click()
    return playground


def all_children(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from all_children(child)


def test_it_runs_on_the_installed_ipywidgets():
    major = int(ipywidgets.__version__.split(".")[0])
    assert major in (7, 8), ipywidgets.__version__


def test_every_control_is_in_the_layout(playground):
    inside = set(map(id, all_children(playground.widget)))
    for name in (
        "prompt negative_prompt seed random_seed_button num_inference_steps guidance_scale scheduler batch_size "
        "width height generate_button save_button progress status picture caption history_strip"
    ).split():
        assert id(getattr(playground, name)) in inside, name
    notices = [w.value for w in all_children(playground.widget) if isinstance(w, ipywidgets.HTML)]
    assert TINY_NOTICE in notices  # the tiny model says what its pictures show
    assert playground.save_button.disabled and playground.picture.value == b""


def test_generate_shows_the_picture_its_caption_and_a_full_progress_bar(playground):
    generate(playground, prompt="a red fox in the snow", seed=3)
    (image,) = playground.images
    assert image.size == (64, 64)
    assert shown(playground).size == (192, 216)  # labelled_grid: enlarged to 192 px, with a caption strip
    assert "<b>a red fox in the snow</b>" in playground.caption.value
    own = type(playground.pipe.scheduler).__name__  # the model's own scheduler
    assert f"seed 3 · {STEPS} steps · guidance 7.5 · {own} · 64x64 · tiny:base" in playground.caption.value
    assert playground.progress.value == playground.progress.max == playground.pipe.num_timesteps >= STEPS
    assert playground.progress.bar_style == "success"
    assert playground.message.startswith("Made 1 picture(s) in ")
    assert not playground.save_button.disabled and not playground.generate_button.disabled


def test_the_picture_is_the_one_get_inputs_makes_with_the_same_settings(playground):
    generate(playground, prompt="a lighthouse", seed=11, guidance_scale=4.0)
    inputs = get_inputs(prompt="a lighthouse", seed=11, num_inference_steps=STEPS, height=64, width=64)
    expected = playground.pipe(**inputs, guidance_scale=4.0).images[0]
    assert image_difference(playground.images[0], expected) == 0
    generate(playground, seed=12)
    assert image_difference(playground.images[0], expected) > 1


def test_batch_size_scheduler_size_and_negative_prompt(playground):
    generate(
        playground,
        batch_size=3,
        scheduler="DPMSolverMultistepScheduler",
        width=48,
        height=32,
        negative_prompt="blurry",
        seed=5,
    )
    assert [image.size for image in playground.images] == [(48, 32)] * 3
    assert type(playground.pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert playground.current.seeds == [5, 6, 7]
    assert playground.current.inputs["negative_prompt"] == ["blurry"] * 3
    assert "seed 5-7" in playground.caption.value and "not: blurry" in playground.caption.value
    assert shown(playground).size == (3 * 192, 128 + 24)  # one row of three, each enlarged 6 times


def test_the_scheduler_menu_lists_the_usable_compatible_schedulers(playground):
    options = list(playground.scheduler.options)
    assert options == sorted(options) and "PNDMScheduler" in options and "EulerDiscreteScheduler" in options
    assert playground.scheduler.value == type(playground.pipe.scheduler).__name__  # it starts at the model's own


def test_the_random_seed_button(playground, monkeypatch):
    monkeypatch.setattr("random.randint", lambda low, high: high)
    playground.batch_size.value = 4
    playground.random_seed_button.click()
    assert playground.seed.value == MAX_SEED - 4  # the last picture's seed, seed + 3, still fits
    monkeypatch.undo()
    seeds = {playground.random_seed() for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= seed <= MAX_SEED for seed in seeds)


def test_save_writes_the_pictures_with_their_settings_and_never_overwrites(playground, tmp_path):
    generate(playground, prompt="a red fox", seed=7, batch_size=2, scheduler="EulerDiscreteScheduler")
    playground.save_button.click()
    playground.save_button.click()
    folder = tmp_path / "saved"
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == [f"a-red-fox-000{i}.png" for i in range(4)]
    meta = read_metadata(pngs[1])
    assert meta["prompt"] == "a red fox" and meta["seed"] == "8" and meta["steps"] == str(STEPS)
    assert meta["scheduler"] == "EulerDiscreteScheduler" and meta["model"] == "tiny:base"
    assert meta["guidance_scale"] == "7.5" and meta["notebook"] == "00_test"
    assert json.loads(pngs[1].with_suffix(".json").read_text())["seed"] == 8
    assert Image.open(pngs[0]).size == (64, 64)
    assert (
        playground.message
        == f"Saved 2 picture(s) with their settings in {folder}: a-red-fox-0002.png, a-red-fox-0003.png"
    )


def test_save_before_any_picture_says_so(playground, tmp_path):
    playground.save()
    assert playground.message == "Nothing to save yet: click Generate first."
    assert not (tmp_path / "saved").exists()


def test_save_into_a_folder_that_cannot_be_made_is_a_message(playground, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    playground.output_dir = tmp_path / "a-file" / "pictures"
    generate(playground)
    assert playground.save() == []
    assert playground.message.startswith("Not saved: ") and "Choose another output_dir." in playground.message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prompt": "   "}, "the prompt is empty: type what you want to see"),
        ({"num_inference_steps": 0}, "num_inference_steps must be an integer >= 1, got num_inference_steps=0"),
        ({"height": 100}, "height must be a multiple of 8 (the VAE shrinks images 8 times), got height=100; use 96"),
        ({"width": 4}, "width must be an integer >= 8, got width=4"),
        ({"seed": -1}, "seed must be an integer >= 0, got seed=-1"),
    ],
)
def test_a_bad_value_is_a_message_and_the_history_stays(playground, values, message):
    generate(playground, prompt="first", seed=1)
    before = (playground.history[:], playground.current, playground.picture.value, playground.caption.value)
    assert generate(playground, **values).message.startswith(f"Not generated: {message}")
    assert playground.message.endswith("The history is unchanged.")
    assert "Traceback" not in playground.status.value and "color:#b00020" in playground.status.value
    after = (playground.history, playground.current, playground.picture.value, playground.caption.value)
    assert after == before
    assert playground.progress.bar_style == "danger" and not playground.generate_button.disabled
    assert isinstance(playground.last_error, ValueError)


def test_history_restores_the_settings_and_the_picture(playground):
    generate(playground, prompt="first", seed=1, guidance_scale=3.0, scheduler="DDIMScheduler", height=48)
    first_picture = playground.picture.value
    first_image = playground.images[0]
    generate(playground, prompt="second", negative_prompt="fog", seed=2, guidance_scale=9.0, batch_size=2)
    assert [b.description for b in playground.history_buttons] == ["seed 2", "seed 1"]  # newest first
    playground.history_buttons[1].click()
    assert playground.settings() == {
        "prompt": "first",
        "negative_prompt": None,
        "seed": 1,
        "num_inference_steps": STEPS,
        "guidance_scale": 3.0,
        "scheduler": "DDIMScheduler",
        "batch_size": 1,
        "height": 48,
        "width": 64,
    }
    assert playground.picture.value == first_picture and playground.message.startswith("Restored the settings")
    generate(playground)  # the restored settings make the same picture again
    assert image_difference(playground.images[0], first_image) == 0
    assert len(playground.history) == 3


def test_history_keeps_the_last_pictures(fresh_tiny_pipe):
    playground = Playground(fresh_tiny_pipe, num_inference_steps=1, history_size=2)
    for seed in range(3):
        generate(playground, seed=seed)
    assert [c.settings["seed"] for c in playground.history] == [2, 1]
    assert len(playground.history_strip.children) == len(playground.history_buttons) == 2


def test_bad_starting_values_are_errors_naming_them(fresh_tiny_pipe):
    with pytest.raises(ValueError, match=r"height must be a multiple of 8 .*got height=70; use 64 or 72"):
        Playground(fresh_tiny_pipe, height=70)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got batch_size=0"):
        Playground(fresh_tiny_pipe, batch_size=0)


def test_other_failures_are_explained_without_a_traceback():
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert _explain(oom) == (
        "OutOfMemoryError: the GPU ran out of memory. Lower the batch size or the size, "
        "or see 05_memory for attention slicing and offloading."
    )
    assert _explain(RuntimeError("boom")) == "RuntimeError: boom."


def test_the_caption_escapes_html_and_says_real_pictures_are_not_noise():
    settings = dict(prompt="<b>x</b>", negative_prompt=None, seed=4, num_inference_steps=20, guidance_scale=7.5)
    settings.update(scheduler="PNDMScheduler", batch_size=1, height=512, width=512)
    creation = Creation(settings, [Image.new("RGB", (8, 8))], {}, 1.25, "stable-diffusion-v1-5/stable-diffusion-v1-5")
    assert caption(creation) == (
        "<b>&lt;b&gt;x&lt;/b&gt;</b><br>seed 4 · 20 steps · guidance 7.5 · PNDMScheduler · 512x512 · "
        "stable-diffusion-v1-5/stable-diffusion-v1-5 · 1.2 s"
    )


def run_as_code(code: str, folder, monkeypatch) -> dict:
    """Run the printed code as a learner would, in a fresh namespace and a folder of its own."""
    imports = re.findall(r"^(?:from|import) (\w+)", code, re.MULTILINE)
    assert imports == ["torch", "diffusers"], imports  # nothing of this tutorial
    folder.mkdir()
    monkeypatch.chdir(folder)
    namespace = {}
    exec(code, namespace)
    return namespace


def test_as_code_is_plain_diffusers_that_makes_the_same_pictures(playground, tmp_path, monkeypatch):
    scheduler = "DPMSolverMultistepScheduler"  # not the tiny model's own
    values = dict(prompt="it's a fox", negative_prompt="fog", seed=9, batch_size=2, scheduler=scheduler)
    generate(playground, guidance_scale=5.5, height=48, **values)
    code = playground.as_code()
    assert f"from diffusers import {scheduler}, StableDiffusionPipeline" in code
    assert f"pipe.scheduler = {scheduler}.from_config(pipe.scheduler.config)" in code
    assert 'prompt=["it\'s a fox"] * len(seeds),' in code and "seeds = [9, 10]" in code
    made = run_as_code(code, tmp_path / "batch", monkeypatch)["images"]
    assert [image_difference(a, b) for a, b in zip(made, playground.images, strict=True)] == [0, 0]
    saved = [Image.open(tmp_path / "batch" / f"seed-{seed}.png") for seed in (9, 10)]
    assert [image_difference(a, b) for a, b in zip(saved, playground.images, strict=True)] == [0, 0]


def test_as_code_for_one_picture_with_the_loaded_scheduler(playground, tmp_path, monkeypatch):
    own = type(playground.pipe.scheduler).__name__
    generate(playground, scheduler="DDIMScheduler", prompt="a blue box on a snowy field", seed=4)
    generate(playground, scheduler=own, guidance_scale=1.0)  # back to the one the model came with
    code = playground.as_code()
    assert "from_config" not in code and "negative_prompt" not in code
    assert 'generator=torch.Generator("cpu").manual_seed(4),' in code and "guidance_scale=1.0," in code
    made = run_as_code(code, tmp_path / "one", monkeypatch)["image"]
    assert image_difference(made, playground.images[0]) == 0
    assert image_difference(Image.open(tmp_path / "one" / "seed-4.png"), made) == 0


def test_as_code_loads_the_real_model_as_lesson_01_does(fresh_tiny_pipe):
    from helpers import activate_profile

    activate_profile("gpu")
    playground = Playground(fresh_tiny_pipe.to(torch.float16), num_inference_steps=STEPS)
    playground.model = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # what model_name() gives for the real one
    assert (
        "pipe = StableDiffusionPipeline.from_pretrained(\n"
        '    "stable-diffusion-v1-5/stable-diffusion-v1-5", dtype=torch.float16, variant="fp16", use_safetensors=True\n'
        ")"
    ) in playground.as_code()
