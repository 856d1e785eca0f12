"""The inputs of one pipeline call, as one dict: prompts, one seeded generator per image, and the step count.

Example:
    >>> from helpers import activate_profile, get_inputs
    >>> _ = activate_profile("tiny")
    >>> inputs = get_inputs(batch_size=2, seed=7)
    >>> len(inputs["prompt"]), [g.initial_seed() for g in inputs["generator"]]
    (2, [7, 8])
"""

from __future__ import annotations

import torch

from .checks import check_count, check_size
from .profiles import DEFAULT_PROMPT, current_profile


def get_inputs(
    batch_size: int = 1,
    prompt: str | None = None,
    num_inference_steps: int | None = None,
    seed: int = 0,
    generator_device: str = "cpu",
    negative_prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
) -> dict:
    """Build the keyword arguments for ``pipe(**get_inputs(...))``.

    Image ``i`` of the batch gets its own generator seeded ``seed + i``, so it is the same image that a call with
    ``batch_size=1, seed=seed + i`` makes: you can find a good image in a batch and remake it alone.

    The generators live on the CPU by default. The starting noise is then drawn on the CPU and moved to the
    pipeline's device, so one seed gives the same image on CUDA, MPS and CPU; a ``torch.Generator("cuda")`` draws
    different numbers, and fails outright for a pipeline on the CPU or MPS.

    Args:
        batch_size: how many images (the tutorial's ``get_inputs(batch_size=8)``).
        prompt: one prompt for every image; None uses the tutorial's "portrait photo of a old warrior chief".
        num_inference_steps: denoising steps; None uses the active profile's.
        seed: the seed of the first image.
        generator_device: where the generators draw their numbers; keep ``"cpu"`` unless you know why.
        negative_prompt: what to steer away from (e.g. "blurry, low quality"), repeated for every image;
            None leaves it out.
        height, width: the image size in pixels, a multiple of 8 (e.g. ``profile.height``); None leaves it out,
            so the pipeline uses its model's size (512 for Stable Diffusion 1.5).

    Example:
        >>> get_inputs(batch_size=8)["prompt"][0]
        'portrait photo of a old warrior chief'
    """
    check_count("batch_size", batch_size)
    check_count("seed", seed, minimum=0)
    if num_inference_steps is not None:
        check_count("num_inference_steps", num_inference_steps)
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            check_size(name, value)
    for name, value in (("prompt", prompt), ("negative_prompt", negative_prompt)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be one string (it is repeated batch_size times), got {name}={value!r}")
    profile = current_profile()
    prompt = DEFAULT_PROMPT if prompt is None else prompt
    steps = profile.num_inference_steps if num_inference_steps is None else num_inference_steps
    generators = [torch.Generator(generator_device).manual_seed(seed + i) for i in range(batch_size)]
    inputs = {"prompt": [prompt] * batch_size, "generator": generators, "num_inference_steps": steps}
    if negative_prompt is not None:
        inputs["negative_prompt"] = [negative_prompt] * batch_size
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            inputs[name] = value
    return inputs


def generation_settings(
    num_inference_steps: int | None = None,
    height: int | None = None,
    width: int | None = None,
    *,
    fast: bool = False,
) -> dict:
    """The step count and size to pass on to :func:`get_inputs`: the values given, else the active profile's.

    This is how a notebook's parameters left at None become the profile's values (50 steps and 512 pixels on a
    GPU, 10 steps and 64 pixels on the tiny model).

    Args:
        num_inference_steps, height, width: a notebook's parameters; None takes the profile's.
        fast: use the profile's step count for DPM-Solver++ (``profile.fast_steps``, 20 on a GPU) instead of the
            one for the model's default scheduler.

    Example:
        >>> _ = activate_profile("gpu")
        >>> generation_settings(fast=True)
        {'num_inference_steps': 20, 'height': 512, 'width': 512}
    """
    profile = current_profile()
    default_steps = profile.fast_steps if fast else profile.num_inference_steps
    settings = {
        "num_inference_steps": default_steps if num_inference_steps is None else num_inference_steps,
        "height": profile.height if height is None else height,
        "width": profile.width if width is None else width,
    }
    get_inputs(**settings)  # refuses a bad value now, naming it, rather than at the first picture
    return settings
