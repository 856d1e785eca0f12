import json

from PIL import Image

from helpers import get_inputs, read_metadata, save_images
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
    assert meta["scheduler"] == "PNDMScheduler" and meta["model"] == "tiny:base"
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
