import json

from PIL import Image

from helpers import bar_chart, get_inputs, image_saver, read_metadata, save_images
from helpers.charts import figure_to_image
from helpers.outputs import METADATA_KEYS


def test_pngs_and_sidecars_carry_everything_to_remake_the_image(tiny_pipe, tmp_path):
    inputs = get_inputs(batch_size=2, seed=5, num_inference_steps=2, negative_prompt="blurry")
    images = tiny_pipe(**inputs, guidance_scale=6.0).images
    inputs["guidance_scale"] = 6.0
    paths = save_images(images, tmp_path / "out", pipe=tiny_pipe, inputs=inputs, notebook="02")
    assert [p.name for p in paths] == [
        "portrait-photo-of-a-old-warrior-chief-0000.png",
        "portrait-photo-of-a-old-warrior-chief-0001.png",
    ]
    meta = read_metadata(paths[1])
    assert meta["prompt"] == "portrait photo of a old warrior chief"
    assert meta["negative_prompt"] == "blurry"
    assert meta["seed"] == "6" and meta["steps"] == "2" and meta["guidance_scale"] == "6.0"
    assert meta["scheduler"] == "EulerDiscreteScheduler" and meta["model"] == "tiny:base"
    assert (meta["width"], meta["height"]) == ("64", "64")
    assert meta["notebook"] == "02"
    sidecar = json.loads(paths[1].with_suffix(".json").read_text())
    assert sidecar["file"] == paths[1].name and sidecar["seed"] == 6 and sidecar["guidance_scale"] == 6.0
    assert set(METADATA_KEYS) <= set(sidecar)
    assert Image.open(paths[0]).size == (64, 64)


def test_never_overwrites(tmp_path):
    first = save_images([Image.new("RGB", (4, 4), "red")], tmp_path, prefix="pic")
    (tmp_path / "pic-0001.json").write_text("{}")  # a stray sidecar also blocks its name
    second = save_images([Image.new("RGB", (4, 4), "blue")], tmp_path, prefix="pic")
    assert [p.name for p in first + second] == ["pic-0000.png", "pic-0002.png"]
    assert Image.open(first[0]).getpixel((0, 0)) == (255, 0, 0)
    assert (tmp_path / "pic-0001.json").read_text() == "{}"


def test_guidance_defaults_to_the_pipelines_and_no_output_dir_saves_nothing(tiny_pipe, tmp_path):
    inputs = get_inputs(num_inference_steps=1)
    image = tiny_pipe(**inputs).images[0]
    (path,) = save_images(image, tmp_path, pipe=tiny_pipe, inputs=inputs)
    assert read_metadata(path)["guidance_scale"] == "7.5"
    assert save_images([image], None, pipe=tiny_pipe, inputs=inputs) == []


def test_image_saver_binds_the_folder_the_pipeline_and_the_notebook_once(tiny_pipe, tmp_path):
    save = image_saver(tmp_path, tiny_pipe, notebook="02_text_to_image")
    inputs = get_inputs(batch_size=2, seed=3, num_inference_steps=1)
    images = tiny_pipe(**inputs).images
    paths = save(images, inputs)
    assert [p.name for p in paths] == [
        "portrait-photo-of-a-old-warrior-chief-0000.png",
        "portrait-photo-of-a-old-warrior-chief-0001.png",
    ]
    meta = read_metadata(paths[1])
    assert meta["notebook"] == "02_text_to_image" and meta["seed"] == "4" and meta["steps"] == "1"
    assert meta["scheduler"] == "EulerDiscreteScheduler" and meta["model"] == "tiny:base"
    # The same facts as the whole save_images call, file names and creation times aside.
    whole = save_images(images, tmp_path / "whole", pipe=tiny_pipe, inputs=inputs, notebook="02_text_to_image")
    same = read_metadata(whole[1])
    assert {k: v for k, v in meta.items() if k != "created"} == {k: v for k, v in same.items() if k != "created"}


def test_image_saver_records_the_pipeline_only_with_the_inputs_it_was_called_with(tiny_pipe, tmp_path):
    save = image_saver(tmp_path, tiny_pipe, notebook="03_schedulers")
    (grid,) = save(Image.new("RGB", (8, 4)), prefix="schedulers-grid", content="one picture per scheduler")
    meta = read_metadata(grid)
    assert grid.name == "schedulers-grid-0000.png"
    assert meta["notebook"] == "03_schedulers" and meta["content"] == "one picture per scheduler"
    assert "scheduler" not in meta and "model" not in meta  # a grid of several schedulers has no one scheduler
    # Another pipeline for one call, and extra metadata that overrides the bound.
    inputs = get_inputs(num_inference_steps=1)
    (path,) = save(Image.new("RGB", (4, 4)), inputs, pipe=tiny_pipe, scheduler="Euler", notebook="elsewhere")
    meta = read_metadata(path)
    assert meta["scheduler"] == "Euler" and meta["notebook"] == "elsewhere" and meta["model"] == "tiny:base"


def test_image_saver_saves_a_chart_as_the_picture_it_shows(tmp_path):
    chart = bar_chart(["a", "b"], {"seconds": [1.0, 2.0]}, title="t")
    (path,) = image_saver(tmp_path, notebook="07_making_it_fast")(chart, prefix="speed-chart")
    assert Image.open(path).size == figure_to_image(chart).size
    assert read_metadata(path)["notebook"] == "07_making_it_fast"


def test_image_saver_without_a_folder_saves_nothing_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert image_saver(None, notebook="02")(Image.new("RGB", (4, 4)), prefix="pic") == []
    assert list(tmp_path.iterdir()) == []
    Image.new("RGB", (4, 4), "red").save(tmp_path / "pic-0000.png")  # the learner's own file
    (path,) = image_saver(tmp_path)(Image.new("RGB", (4, 4), "blue"), prefix="pic")
    assert path.name == "pic-0001.png"
    assert Image.open(tmp_path / "pic-0000.png").getpixel((0, 0)) == (255, 0, 0)
