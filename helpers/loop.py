"""Inside the pipeline: the denoising loop written out, and the picture emerging step by step.

The lesson writes the loop in its own cells; this module holds the same loop as one function (to repeat it with
other settings, and for the test that it makes the pipeline's picture), and the small pieces around it:

- :func:`denoise_by_hand`: what ``StableDiffusionPipeline.__call__`` does for one prompt, with the pipeline's own
  components (tokenizer, text encoder, UNet, scheduler, VAE); the same picture as ``pipe(...)`` for the same seed;
- :func:`decode_latents`: latents to pictures, as the pipeline's last step does;
- :class:`KeepLatents`: a ``callback_on_step_end`` that keeps the latents after every step;
- :func:`emerging_strip`: a few of those latents, decoded, side by side.

Example:
    >>> import torch
    >>> result = denoise_by_hand(pipe, "a red ball", generator=torch.Generator("cpu").manual_seed(0),
    ...                          num_inference_steps=4)
    >>> result.image.size, len(result.latents) == len(pipe.scheduler.timesteps)  # one latent per UNet call
    ((64, 64), True)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .checks import check_count, check_number, check_size
from .grid import labelled_grid

__all__ = ["HandLoop", "KeepLatents", "decode_latents", "denoise_by_hand", "emerging_strip", "strip_steps"]


@dataclass
class HandLoop:
    """What :func:`denoise_by_hand` made: the picture, and the latents after each call of the scheduler's step."""

    image: Image.Image
    latents: list[torch.Tensor] = field(repr=False)


def _encode(pipe, text: str) -> torch.Tensor:
    """One text's embeddings: tokens padded to the tokenizer's length (77 for CLIP), then the text encoder."""
    tokens = pipe.tokenizer(
        [text], padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt"
    )
    return pipe.text_encoder(tokens.input_ids.to(pipe.device))[0]


def denoise_by_hand(
    pipe,
    prompt: str,
    *,
    generator: torch.Generator,
    num_inference_steps: int = 50,
    guidance_scale: float = 7.5,
    negative_prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
) -> HandLoop:
    """Make one picture with the pipeline's components, step by step, as ``pipe(...)`` makes it.

    It follows ``StableDiffusionPipeline.__call__`` of diffusers 0.42: the prompt and the empty prompt (or the
    negative prompt) encoded; the scheduler's timesteps set; the starting noise drawn by ``generator`` in the
    pipeline's dtype (on the CPU for a CPU generator, then moved, as ``diffusers.utils.torch_utils.randn_tensor``
    does) and scaled by the scheduler's ``init_noise_sigma``, which for some schedulers (Euler's) depends on the
    timesteps just set; then for each timestep: ``scale_model_input``, the UNet on the doubled batch, the guidance
    formula, ``scheduler.step``. With ``guidance_scale`` at 1 or below it skips the empty prompt,
    as the pipeline does. The safety checker, which the pipeline runs on the real model, is left out.

    Args:
        pipe: a loaded ``StableDiffusionPipeline``; its scheduler is set for this run (``set_timesteps``).
        prompt: what to draw.
        generator: a seeded ``torch.Generator`` (``torch.Generator("cpu").manual_seed(0)``); used up as the
            pipeline uses it, so pass a fresh one to get the pipeline's picture for that seed.
        num_inference_steps: the scheduler's steps (PNDM, SD1.5's, calls the UNet once more: it takes its first
            step twice).
        guidance_scale: how far the prediction is pushed from the empty prompt's towards the prompt's.
        negative_prompt: what replaces the empty prompt; None: the empty prompt.
        height, width: the picture's size, a multiple of 8; None: the UNet's sample size times the VAE's factor.

    Returns:
        :class:`HandLoop`: the picture, and the latents after every step (what ``callback_on_step_end`` sees).

    Example:
        >>> denoise_by_hand(pipe, "a red ball", generator=0)
        Traceback (most recent call last):
        ...
        TypeError: generator must be a torch.Generator, got generator=0; e.g. generator=torch.Generator("cpu").manual_seed(0)
    """  # noqa: E501
    if not isinstance(prompt, str):
        raise TypeError(f'prompt must be one string, got prompt={prompt!r}; e.g. prompt="a red ball"')
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, got generator={generator!r}; "
            f'e.g. generator=torch.Generator("cpu").manual_seed({generator if isinstance(generator, int) else 0})'
        )
    check_count("num_inference_steps", num_inference_steps)
    check_number("guidance_scale", guidance_scale, minimum=0, about="7.5 is the pipeline's default")
    default_size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    height = check_size("height", default_size if height is None else height)
    width = check_size("width", default_size if width is None else width)
    guided = guidance_scale > 1
    scheduler = pipe.scheduler

    with torch.no_grad():
        text_embeddings = _encode(pipe, prompt)
        if guided:
            uncond_embeddings = _encode(pipe, "" if negative_prompt is None else negative_prompt)
            text_embeddings = torch.cat([uncond_embeddings, text_embeddings])

        scheduler.set_timesteps(num_inference_steps, device=pipe.device)
        shape = (1, pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
        draw_on = "cpu" if generator.device.type == "cpu" else pipe.device
        latents = torch.randn(shape, generator=generator, device=draw_on, dtype=text_embeddings.dtype)
        latents = latents.to(pipe.device) * scheduler.init_noise_sigma  # after set_timesteps: it may depend on them
        # Schedulers that add fresh noise at each step (the ancestral ones) draw it from the same generator.
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
        history = []
        for t in scheduler.timesteps:
            latent_model_input = torch.cat([latents] * 2) if guided else latents
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
            noise_pred = pipe.unet(latent_model_input, t, encoder_hidden_states=text_embeddings).sample
            if guided:
                noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
                noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
            latents = scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
            history.append(latents)
    return HandLoop(decode_latents(pipe, latents)[0], history)


def decode_latents(pipe, latents: torch.Tensor) -> list[Image.Image]:
    """Latents to pictures, as the pipeline's last step: undo the VAE's ``scaling_factor``, decode, postprocess.

    ``pipe.image_processor.postprocess`` maps the VAE's -1..1 to 0..1, then rounds to 0..255 levels; the older
    tutorials' ``(image * 255).to(torch.uint8)`` truncates instead, which makes many pixels one level darker.

    Args:
        pipe: the pipeline whose VAE made the latents' space.
        latents: a batch, shape ``(n, 4, height / 8, width / 8)``, as the UNet sees them.

    Example:
        >>> import torch
        >>> latents = torch.zeros(2, 4, 8, 8)
        >>> [picture.size for picture in decode_latents(pipe, latents)]
        [(64, 64), (64, 64)]
    """
    if not isinstance(latents, torch.Tensor) or latents.ndim != 4:
        raise ValueError(
            f"latents must be a batch of latents, shape (n, channels, height, width), got "
            f"{tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__}; "
            "for one latent write latents[None] or torch.cat([latents])"
        )
    vae = pipe.vae
    with torch.no_grad():
        decoded = vae.decode(latents.to(vae.device, vae.dtype) / vae.config.scaling_factor).sample
    return pipe.image_processor.postprocess(decoded)


class KeepLatents:
    """A ``callback_on_step_end`` that keeps a copy of the latents after every step of a pipeline call.

    diffusers calls it as ``callback(pipe, step_index, timestep, callback_kwargs)`` after each
    ``scheduler.step``, with ``callback_kwargs["latents"]`` (the tensors named by
    ``callback_on_step_end_tensor_inputs``, ``["latents"]`` by default); what it returns replaces them, so it returns
    them unchanged.

    Example:
        >>> keep = KeepLatents()
        >>> _ = pipe(prompt="a red ball", num_inference_steps=4, callback_on_step_end=keep)
        >>> len(keep.latents) == len(keep.timesteps) == len(pipe.scheduler.timesteps)
        True
    """

    def __init__(self) -> None:
        self.latents: list[torch.Tensor] = []
        self.timesteps: list[int] = []

    def __call__(self, pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        self.latents.append(callback_kwargs["latents"].detach().clone())
        self.timesteps.append(int(timestep))
        return callback_kwargs


def strip_steps(total: int, count: int = 5) -> list[int]:
    """Which of ``total`` steps a strip of ``count`` pictures shows: evenly spread, the first and the last included.

    Steps are counted from 1 (the latents after the first step) to ``total`` (the finished latents).

    Example:
        >>> strip_steps(11), strip_steps(51), strip_steps(3)
        ([1, 4, 6, 8, 11], [1, 14, 26, 38, 51], [1, 2, 3])
    """
    check_count("total", total, about="the steps there are")
    check_count("count", count, about="the pictures in the strip")
    return sorted({int(step) for step in np.linspace(1, total, min(count, total)).round()})


def emerging_strip(pipe, latents: Sequence[torch.Tensor], count: int = 5, min_width: int = 160) -> Image.Image:
    """The picture emerging: the latents after a few of the steps, decoded, side by side, each labelled with its step.

    Args:
        pipe: the pipeline that made them (its VAE decodes them).
        latents: the latents after every step, in order (``KeepLatents().latents`` or :class:`HandLoop`'s).
        count: how many steps to show (:func:`strip_steps`).
        min_width: small pictures are enlarged to this width so that their labels fit.

    Example:
        >>> import torch
        >>> latents = [torch.zeros(1, 4, 8, 8)] * 11
        >>> emerging_strip(pipe, latents).size
        (960, 216)
    """
    if len(latents) == 0:
        raise ValueError("latents is empty: pass the latents after each step, e.g. KeepLatents().latents after a call")
    steps = strip_steps(len(latents), count)
    pictures = [decode_latents(pipe, latents[step - 1])[0] for step in steps]
    return labelled_grid(
        pictures, [f"step {step}/{len(latents)}" for step in steps], cols=len(steps), min_width=min_width
    )
