import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import activate_profile, generation_settings, get_inputs
from helpers.profiles import DEFAULT_PROMPT


def test_tutorial_call_uses_profile_defaults():
    activate_profile("tiny")
    inputs = get_inputs(batch_size=8)
    assert set(inputs) == {"prompt", "generator", "num_inference_steps"}
    assert inputs["prompt"] == [DEFAULT_PROMPT] * 8
    assert inputs["num_inference_steps"] == 10
    assert get_inputs(batch_size=2, negative_prompt="blurry")["negative_prompt"] == ["blurry", "blurry"]
    activate_profile("gpu")
    assert get_inputs()["num_inference_steps"] == 50


@settings(max_examples=50, deadline=None)
@given(
    batch_size=st.integers(1, 24),
    seed=st.integers(0, 2**40),
    prompt=st.text(max_size=30),
    steps=st.integers(1, 200),
)
def test_one_generator_per_image_seeded_in_order(batch_size, seed, prompt, steps):
    inputs = get_inputs(batch_size=batch_size, prompt=prompt, num_inference_steps=steps, seed=seed)
    assert inputs["prompt"] == [prompt] * batch_size
    assert inputs["num_inference_steps"] == steps
    generators = inputs["generator"]
    assert len(generators) == batch_size
    assert len({id(g) for g in generators}) == batch_size  # distinct objects, not one shared generator
    assert [g.initial_seed() for g in generators] == [seed + i for i in range(batch_size)]
    assert all(g.device.type == "cpu" for g in generators)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), batch_size=st.integers(1, 6), i=st.integers(0, 5))
def test_generator_i_draws_what_a_lone_generator_with_seed_plus_i_draws(seed, batch_size, i):
    i = i % batch_size
    batch = get_inputs(batch_size=batch_size, seed=seed)["generator"][i]
    alone = get_inputs(batch_size=1, seed=seed + i)["generator"][0]
    assert torch.equal(torch.randn(4, generator=batch), torch.randn(4, generator=alone))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got batch_size=0"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1, got batch_size=2.5"),
        ({"batch_size": True}, r"batch_size must be an integer >= 1, got batch_size=True"),
        ({"seed": -1}, r"seed must be an integer >= 0, got seed=-1"),
        ({"num_inference_steps": 0}, r"num_inference_steps must be an integer >= 1, got num_inference_steps=0"),
        ({"prompt": ["a", "b"]}, r"prompt must be one string .* got prompt=\['a', 'b'\]"),
        ({"negative_prompt": 3}, r"negative_prompt must be one string .* got negative_prompt=3"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_inputs(**kwargs)


def test_size_is_passed_only_when_asked_for(tiny_pipe):
    assert "height" not in get_inputs() and "width" not in get_inputs()
    inputs = get_inputs(num_inference_steps=1, height=32, width=48)
    assert (inputs["height"], inputs["width"]) == (32, 48)
    assert tiny_pipe(**inputs).images[0].size == (48, 32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 100}, r"height must be a multiple of 8 .* got height=100; use 96 or 104"),
        ({"width": 4}, r"width must be an integer >= 8, got width=4"),
        ({"height": "64"}, r"height must be an integer >= 8, got height='64'"),
    ],
)
def test_bad_sizes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_inputs(**kwargs)


def test_generation_settings_take_the_profiles_values_for_none():
    activate_profile("tiny")
    assert generation_settings() == {"num_inference_steps": 10, "height": 64, "width": 64}
    assert generation_settings(fast=True)["num_inference_steps"] == 5
    assert generation_settings(3, 32, fast=True) == {"num_inference_steps": 3, "height": 32, "width": 64}
    activate_profile("gpu")
    assert generation_settings(fast=True) == {"num_inference_steps": 20, "height": 512, "width": 512}


def test_generation_settings_refuse_bad_values_at_once():
    with pytest.raises(ValueError, match=r"height must be a multiple of 8 .* got height=500"):
        generation_settings(height=500)
    with pytest.raises(ValueError, match=r"num_inference_steps must be an integer >= 1, got num_inference_steps=0"):
        generation_settings(num_inference_steps=0)
