"""The training recipe, run for a few steps at toy width: the loss falls, and the result saves and loads back."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from helpers import training
from helpers.standins import world

SMALL = training.Sizes(unet_channels=(32, 64), text_width=32, text_layers=1)


def test_every_word_of_the_world_is_one_token():
    tokenizer = training.world_tokenizer()
    split = [w for w in training.world_words() if len(tokenizer.tokenize(w)) != 1]
    assert len(split) <= 2, split  # BPE may still split a word whose merges another word's outrank
    ids = tokenizer("a red sailboat, mdjrny-v4 style ✨", padding="max_length", truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == tokenizer.bos_token_id
    assert tokenizer.unk_token_id not in ids[1 : ids.index(tokenizer.eos_token_id)]  # unknown text still tokenizes


def test_the_autoencoder_learns_to_rebuild_pictures_it_never_saw():
    vae = training.new_autoencoder()
    pixels = training.to_tensor(world.Sampler(seed=99).batch(8)[0])

    def error() -> float:
        with torch.no_grad():
            return torch.nn.functional.mse_loss(vae.decode(vae.encode(pixels).latent_dist.mean).sample, pixels).item()

    before = error()
    losses = training.train_autoencoder(vae, steps=30, batch_size=8, lr=3e-3, crop=16, progress=False)
    assert len(losses) == 30
    assert error() < 0.7 * before


def test_the_object_mask_marks_the_object_and_the_style_frame_not_the_background():
    thing = world.Thing(colour="red", shape="ball", position="left", background="sea", size="big")
    plain = training.object_mask(training.to_tensor([world.draw(thing)]))[0, 0]
    styled = training.object_mask(training.to_tensor([world.draw(replace(thing, styled=True))]))[0, 0]
    judged = world.judge(world.draw(thing))
    # the judge's object and its soft edge (the mask's threshold is lower than the judge's)
    assert judged.colour == "red" and judged.object_share <= plain.mean().item() < 1.5 * judged.object_share
    assert plain[34, 19] == 1 and plain[34, 50] == 0  # the ball's centre; the sea on the right
    assert plain[:, 40:].sum() == 0  # nothing but sea there
    assert styled[1, 32] == 1 and styled[32, 1] == 1 and styled[32, 50] == 0  # the frame's top and side; the sea


def test_the_object_weight_counts_the_objects_error_that_many_times():
    def loss(weight: float) -> float:
        vae = training.new_autoencoder(seed=0)
        return training.train_autoencoder(vae, steps=1, batch_size=4, crop=64, object_weight=weight, progress=False)[0]

    plain, weighted = loss(1.0), loss(10.0)
    assert weighted > 1.5 * plain  # the same pictures, the same model: only the weights differ


@pytest.fixture(scope="module")
def encoded():
    vae = training.new_autoencoder()
    vae.register_to_config(scaling_factor=0.5)
    return vae, training.encode_pictures(vae, world.Sampler(seed=0), 16, progress=False)


def test_pictures_are_encoded_once_with_the_scaling_factor(encoded):
    vae, data = encoded
    assert len(data) == 16 and data.mean.shape == (16, 4, 8, 8) and data.std.shape == (16, 4, 8, 8)
    with torch.no_grad():
        latents = vae.encode(training.to_tensor([world.Sampler(seed=0).example()[0]])).latent_dist.mean
    assert torch.allclose(data.mean[0], latents[0] * 0.5, atol=1e-5)
    first, _ = data.batch(torch.tensor([0, 0]), torch.Generator().manual_seed(0))
    assert not torch.equal(first[0], first[1])  # a fresh sample of the latent distribution each time


def test_the_text_to_image_model_learns_then_saves_and_loads(encoded, tmp_path):
    vae, data = encoded
    tokenizer = training.world_tokenizer()
    text_encoder = training.new_text_encoder(tokenizer, SMALL)
    unet = training.new_unet(SMALL)
    seen = []
    losses = training.train_text_to_image(
        unet, text_encoder, tokenizer, data, steps=30, batch_size=8, lr=2e-3, every=10,
        on_sample=lambda step, so_far: seen.append((step, len(so_far))), progress=False,
    )  # fmt: skip
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert seen == [(10, 10), (20, 20), (30, 30)]
    pipe = training.assemble_pipeline(vae, text_encoder, tokenizer, unet)
    pipe.save_pretrained(tmp_path)
    again = StableDiffusionPipeline.from_pretrained(tmp_path, dtype=torch.float32)
    again.set_progress_bar_config(disable=True)
    picture = again("a red ball", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert picture.size == (64, 64)
    assert again.tokenizer.tokenize("sailboat") == tokenizer.tokenize("sailboat")
    assert type(again.scheduler).__name__ == "EulerDiscreteScheduler"  # the tiny models' default
