"""The denoising loop by hand (helpers/loop.py, the lesson "inside the pipeline"): the pipeline's picture for the
same seed and settings, with every scheduler kind; the callback sees the loop's latents; and what the lesson says
about image to image (``from_pipe``'s dtype, ``strength``) holds in diffusers as installed."""

import numpy as np
import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionImg2ImgPipeline,
)
from PIL import Image

from helpers.loop import KeepLatents, decode_latents, denoise_by_hand, emerging_strip, strip_steps

STEPS = 4


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(seed)


def largest_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max())


def pipeline_picture(pipe, prompt: str, seed: int = 0, **settings) -> Image.Image:
    return pipe(prompt=prompt, generator=generator(seed), num_inference_steps=STEPS, **settings).images[0]


def hand_picture(pipe, prompt: str, seed: int = 0, **settings) -> Image.Image:
    return denoise_by_hand(pipe, prompt, generator=generator(seed), num_inference_steps=STEPS, **settings).image


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"guidance_scale": 3.0},
        {"guidance_scale": 1.0},  # the pipeline skips the empty prompt: so must the loop
        {"guidance_scale": 0.0},
        {"negative_prompt": "a starry night"},
        {"height": 64, "width": 96},  # latents 8 x 12: height and width in the right order
    ],
    ids=["default", "guidance-3", "guidance-1", "guidance-0", "negative-prompt", "64x96"],
)
def test_the_loop_by_hand_makes_the_pipelines_picture(tiny_pipe, settings):
    prompt = "a red ball on the left of a calm sea"
    expected = pipeline_picture(tiny_pipe, prompt, **settings)
    made = hand_picture(tiny_pipe, prompt, **settings)
    assert made.size == expected.size
    assert largest_difference(made, expected) <= 1


@pytest.mark.parametrize(
    "scheduler_class",
    # PNDM: SD1.5's, which takes its first step twice; Euler: init_noise_sigma depends on the timesteps set and
    # scale_model_input divides; ancestral: step draws from the generator; DPM-Solver++: a multistep solver.
    [PNDMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler],
    ids=lambda cls: cls.__name__,
)
def test_the_loop_by_hand_makes_the_pipelines_picture_with_other_schedulers(fresh_tiny_pipe, scheduler_class):
    pipe = fresh_tiny_pipe
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    prompt = "a yellow box in the middle of a starry night"
    assert largest_difference(hand_picture(pipe, prompt, seed=3), pipeline_picture(pipe, prompt, seed=3)) <= 1


def test_the_comparison_can_tell_pictures_apart(tiny_pipe):
    """Equal within one level means something: another seed or another prompt is far from it."""
    prompt = "a red ball on the left of a calm sea"
    expected = pipeline_picture(tiny_pipe, prompt)
    assert largest_difference(hand_picture(tiny_pipe, prompt, seed=1), expected) > 20
    assert largest_difference(hand_picture(tiny_pipe, "Underwater City"), expected) > 20


@pytest.mark.parametrize(
    ("scheduler_class", "timesteps"),
    [(PNDMScheduler, [751, 501, 501, 251, 1]), (EulerDiscreteScheduler, [751, 501, 251, 1])],
    ids=["PNDM-takes-its-first-step-twice", "Euler"],
)
def test_the_callback_sees_the_latents_of_the_loop_by_hand(fresh_tiny_pipe, scheduler_class, timesteps):
    pipe = fresh_tiny_pipe
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    keep = KeepLatents()
    pipe(prompt="Underwater City", generator=generator(), num_inference_steps=STEPS, callback_on_step_end=keep)
    by_hand = denoise_by_hand(pipe, "Underwater City", generator=generator(), num_inference_steps=STEPS)
    assert keep.timesteps == pipe.scheduler.timesteps.tolist() == timesteps
    assert len(keep.latents) == len(by_hand.latents) == len(timesteps)
    assert all(torch.equal(a, b) for a, b in zip(keep.latents, by_hand.latents, strict=True))
    assert decode_latents(pipe, keep.latents[-1])[0].tobytes() == by_hand.image.tobytes()


def test_keep_latents_leaves_the_picture_unchanged(tiny_pipe):
    plain = pipeline_picture(tiny_pipe, "Underwater City")
    kept = tiny_pipe(
        prompt="Underwater City", generator=generator(), num_inference_steps=STEPS, callback_on_step_end=KeepLatents()
    ).images[0]
    assert kept.tobytes() == plain.tobytes()


def test_decode_latents_gives_one_picture_per_latent_at_the_vaes_scale(tiny_pipe):
    pictures = decode_latents(tiny_pipe, torch.zeros(3, 4, 8, 12))
    assert [p.size for p in pictures] == [(96, 64)] * 3 and all(p.mode == "RGB" for p in pictures)


def test_decode_latents_says_what_shape_it_needs(tiny_pipe):
    with pytest.raises(ValueError, match=r"latents must be a batch .* got \(4, 8, 8\); .* latents\[None\]"):
        decode_latents(tiny_pipe, torch.zeros(4, 8, 8))


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [(11, 5, [1, 4, 6, 8, 11]), (51, 5, [1, 14, 26, 38, 51]), (1, 5, [1]), (2, 5, [1, 2]), (6, 2, [1, 6])],
)
def test_strip_steps_spread_over_the_steps_first_and_last_included(total, count, expected):
    assert strip_steps(total, count) == expected


def test_strip_steps_refuse_a_bad_count():
    with pytest.raises(ValueError, match=r"count must be an integer >= 1 .* got count=0"):
        strip_steps(10, 0)


def test_emerging_strip_labels_the_steps_it_shows(tiny_pipe):
    latents = [torch.full((1, 4, 8, 8), float(i)) for i in range(11)]
    strip = emerging_strip(tiny_pipe, latents, count=3)
    assert strip.size == (3 * 192, 192 + 24)
    # Different latents decode to different pictures: the strip shows steps 1, 6 and 11, not one step three times.
    cells = [strip.crop((i * 192, 0, (i + 1) * 192, 192)).tobytes() for i in range(3)]
    assert len(set(cells)) == 3
    with pytest.raises(ValueError, match="latents is empty"):
        emerging_strip(tiny_pipe, [])


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"generator": 0}, TypeError, r"generator must be a torch.Generator, got generator=0; .*manual_seed\(0\)"),
        ({"prompt": ["a", "b"]}, TypeError, r"prompt must be one string, got prompt=\['a', 'b'\]"),
        ({"height": 100}, ValueError, r"height must be a multiple of 8 .* got height=100; use 96 or 104"),
        ({"guidance_scale": -1}, ValueError, r"guidance_scale must be a number >= 0 .* got guidance_scale=-1"),
        ({"num_inference_steps": 0}, ValueError, r"must be an integer >= 1, got num_inference_steps=0"),
    ],
)
def test_denoise_by_hand_names_a_bad_argument(tiny_pipe, arguments, error, message):
    call = {"prompt": "a red ball", "generator": generator(), "num_inference_steps": 2, **arguments}
    with pytest.raises(error, match=message):
        denoise_by_hand(tiny_pipe, call.pop("prompt"), **call)


# What the lesson says about image to image, checked against diffusers as installed: if a new diffusers changes
# it, these fail and the lesson's text needs the change too.


def test_from_pipe_without_dtype_turns_a_half_precision_pipeline_to_float32(fresh_tiny_pipe):
    """diffusers issue 12754: from_pipe casts the shared parts, so the first pipeline too, to float32."""
    pipe = fresh_tiny_pipe.to(dtype=torch.float16)
    StableDiffusionImg2ImgPipeline.from_pipe(pipe)
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.float32


def test_from_pipe_with_the_pipelines_dtype_shares_its_parts_and_keeps_their_precision(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe.to(dtype=torch.float16)
    img2img = StableDiffusionImg2ImgPipeline.from_pipe(pipe, dtype=pipe.dtype)
    assert all(getattr(img2img, name) is getattr(pipe, name) for name in ("unet", "vae", "text_encoder", "scheduler"))
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.float16


@pytest.mark.parametrize("strength", [0.2, 0.5, 1.0])
def test_strength_picks_where_in_the_schedule_image_to_image_starts(tiny_pipe, strength):
    steps = 10
    img2img = StableDiffusionImg2ImgPipeline.from_pipe(tiny_pipe, dtype=tiny_pipe.dtype)
    img2img.scheduler.set_timesteps(steps)
    schedule = img2img.scheduler.timesteps.tolist()
    timesteps, kept = img2img.get_timesteps(steps, strength, "cpu")
    assert kept == int(steps * strength)
    assert timesteps.tolist() == schedule[len(schedule) - len(timesteps) :]  # the end of the schedule
    keep = KeepLatents()
    start = Image.new("RGB", (64, 64), (70, 140, 200))
    img2img(prompt="a red ball", image=start, strength=strength, num_inference_steps=steps, callback_on_step_end=keep)
    assert keep.timesteps == timesteps.tolist()  # the UNet runs at exactly those timesteps


def test_image_to_image_fails_when_strength_leaves_no_step(tiny_pipe):
    """The lesson gives image to image at least 5 steps, so that strength 0.2 makes one (int(5 * 0.2) == 1)."""
    img2img = StableDiffusionImg2ImgPipeline.from_pipe(tiny_pipe, dtype=tiny_pipe.dtype)
    start = Image.new("RGB", (64, 64), (70, 140, 200))
    with pytest.raises(RuntimeError):
        img2img(prompt="a red ball", image=start, strength=0.2, num_inference_steps=4)
