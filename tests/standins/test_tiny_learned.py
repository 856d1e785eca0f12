"""The shipped tiny model has learned: its pictures answer the prompt, and a broken pipeline's do not.

Every check judges pictures from their pixels (:func:`helpers.standins.world.judge`) for captions that no training
picture showed, at the lessons' settings; the thresholds sit well below what ``make eval-tiny`` measures
(docs/reports/tiny-model/) and well above what a broken pipeline gets, so each test can fail.

They are part of ``make test``: about 170 pictures at 64 x 64, 11 s for the whole file on two idle cores.
"""

from dataclasses import replace

import pytest
import torch
from diffusers import StableDiffusionPipeline

from helpers.profiles import PROFILES
from helpers.standins import world
from helpers.standins.tiny import tiny_lora_path, tiny_model_path
from tools import eval_tiny
from tools.eval_tiny import accuracy, held_out, negative_effect, scheduler_agreement, seed_spread, style_rate

THINGS = held_out(16)


def _load(kind: str) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_path(kind), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# The lessons' settings: the model's own scheduler (Euler), the tiny profile's steps, guidance 7.5.
SETTINGS = {"num_inference_steps": PROFILES["tiny"].num_inference_steps, "guidance_scale": 7.5}


@pytest.fixture(scope="module")
def base():
    return _load("base")


@pytest.fixture(scope="module")
def right(base):
    return accuracy(base, THINGS, **SETTINGS)


class BackwardsGuidance(StableDiffusionPipeline):
    """Guidance wired backwards: the prompt's and the empty prompt's embeddings swapped, so each step moves the
    picture away from the prompt instead of towards it."""

    def encode_prompt(self, *args, **kwargs):
        prompt_embeds, negative_embeds = super().encode_prompt(*args, **kwargs)
        return negative_embeds, prompt_embeds


def test_the_picture_shows_the_colour_position_and_background_the_prompt_names(right):
    assert right["colour"] >= 0.75, right
    assert right["position"] >= 0.75, right
    assert right["background"] >= 0.85, right


def test_the_autoencoder_keeps_what_the_judge_reads(base):
    # Its round trip is the ceiling of every model drawing through it (make eval-tiny: colour 94%, position 99%,
    # background 100%, the style kept in every styled picture). Plain MSE kept the colour in 79%: the refined
    # autoencoder's weighting of the objects is what this checks; one that loses the picture fails here.
    plain = eval_tiny.round_trip(base.vae, held_out())
    styled = eval_tiny.round_trip(base.vae, THINGS, styled=True)
    assert plain["colour"] >= 0.85 and plain["position"] >= 0.95 and plain["background"] >= 0.95, plain
    assert plain["style_kept"] == 1.0 and styled["style_kept"] >= 0.9, (plain, styled)


def test_guidance_on_beats_guidance_off(base, right):
    off = accuracy(base, THINGS, **{**SETTINGS, "guidance_scale": 1.0})
    # Guidance brings out the colour the prompt names (make eval-tiny, 80 captions: 89% at 7.5, 75% at 1); it also
    # pushes big objects towards the middle, so on these 16 all three attributes come out right as often at 1.
    assert right["colour"] >= off["colour"] + 0.1, (right, off)


def test_a_negative_prompt_lowers_the_named_colour(base):
    effect = negative_effect(base, "red", n=12, **SETTINGS)
    assert effect["pixels_with"] < 0.5 * effect["pixels_without"], effect


def test_a_scheduler_swap_gives_the_same_scene_in_fewer_steps(base):
    # DPM-Solver++ in the profile's fast steps (5) against the model's own scheduler in its full ones (10)
    agreement = scheduler_agreement(base, THINGS[:8])
    assert agreement["same_scene"] >= 0.75, agreement


def test_eight_seeds_give_eight_different_pictures(base):
    spread = seed_spread(base, world.SCENES["beach"], **SETTINGS)
    assert spread["min_pair_difference"] > 0.02, spread


def test_the_original_prompts_draw_their_scenes(base):
    recognised = eval_tiny.scene_recognition(base, n=4, **SETTINGS)
    assert min(recognised.values()) >= 0.75, recognised


def test_the_fine_tuned_model_shows_its_style_with_the_trigger_word_only():
    finetuned = _load("finetuned")
    with_trigger = style_rate(finetuned, THINGS[:8], trigger=True, **SETTINGS)
    without = style_rate(finetuned, THINGS[:8], trigger=False, **SETTINGS)
    assert with_trigger >= 0.6 and without <= 0.2, (with_trigger, without)  # make eval-tiny: 88% and 0% of 80


def test_the_lora_brings_the_style_to_the_base_model(base):
    without = style_rate(base, THINGS[:8], trigger=True, **SETTINGS)
    base.load_lora_weights(tiny_lora_path(), adapter_name="style")
    try:
        with_lora = style_rate(base, THINGS[:8], trigger=True, **SETTINGS)
    finally:
        base.unload_lora_weights()
    assert with_lora > without + 0.25, (without, with_lora)


def test_guidance_wired_backwards_fails_the_checks(base, right):
    broken = BackwardsGuidance(**base.components)
    broken.set_progress_bar_config(disable=True)
    wrong = accuracy(broken, THINGS, **SETTINGS)
    assert wrong["colour"] < 0.5 < right["colour"], wrong


def test_a_wrong_scaling_factor_fails_the_checks(base, right):
    vae = type(base.vae).from_config({**base.vae.config, "scaling_factor": 0.18215})  # SD1.5's, not this VAE's
    vae.load_state_dict(base.vae.state_dict())
    broken = StableDiffusionPipeline(**{**base.components, "vae": vae})
    broken.set_progress_bar_config(disable=True)
    wrong = accuracy(broken, THINGS, **SETTINGS)
    assert wrong["all"] < right["all"] - 0.3, (right, wrong)


def test_a_held_out_caption_is_new_to_the_model():
    assert all(world.is_held_out(t) for t in THINGS)
    assert all(replace(t, styled=True).caption().endswith(world.TRIGGER) for t in THINGS)
