"""Loading a Stable Diffusion pipeline the current way, for every profile.

One function, :func:`load_pipeline`, loads the real model on a GPU and the tiny test model on a laptop through
the same ``from_pretrained`` call. It teaches the current diffusers API: ``dtype=`` (older tutorials write
``torch_dtype=``), ``variant="fp16"`` (older: ``revision="fp16"``), safetensors only.

Example:
    >>> from helpers import load_pipeline
    >>> pipe = load_pipeline(profile="tiny")
    >>> type(pipe).__name__, pipe.device.type
    ('StableDiffusionPipeline', 'cpu')
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch

from .profiles import Profile, current_profile, resolve_profile
from .standins import replica
from .standins.tiny import KINDS, tiny_model_path

TINY_PREFIX = "tiny:"
REPLICA_PREFIX = "replica:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelNotAvailableError(OSError):
    """The model is neither in the local Hugging Face cache nor downloadable from here."""


class NoSafetensorsError(OSError):
    """The model has only pickle weights (``.bin``, ``.ckpt``), which can run code when loaded."""


def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith((".", "/", "~")) or "\\" in model_id or not _HUB_ID.match(model_id)


def resolve_model(model_id: str | Path | None, profile: Profile) -> tuple[str, str]:
    """Return ``(where, kind)``: what to pass to ``from_pretrained`` and one of ``"tiny"``, ``"replica"``,
    ``"local"``, ``"hub"``. A ``replica:`` model is built once into the cache, in the profile's dtype.

    Raises:
        FileNotFoundError: a local folder that does not exist or holds no ``model_index.json``.
        ValueError: an unknown ``tiny:`` model.
    """
    model_id = profile.base_model if model_id is None else model_id
    if isinstance(model_id, Path):
        model_id = str(model_id)
    if model_id.startswith(TINY_PREFIX):
        kind = model_id[len(TINY_PREFIX) :]
        if kind not in KINDS:
            valid = [TINY_PREFIX + k for k in KINDS]
            raise ValueError(f"Unknown tiny model model_id={model_id!r}; use one of {valid}")
        return str(tiny_model_path(kind)), "tiny"
    if model_id.startswith(REPLICA_PREFIX):
        kind = model_id[len(REPLICA_PREFIX) :]
        if kind not in replica.KINDS:
            valid = [REPLICA_PREFIX + k for k in replica.KINDS]
            raise ValueError(f"Unknown replica model model_id={model_id!r}; use one of {valid}")
        return str(replica.replica_model_path(kind, profile.dtype)), "replica"
    path = Path(model_id).expanduser()
    if path.exists() or _looks_like_path(model_id):
        if not path.is_dir():
            raise FileNotFoundError(
                f"model_id={model_id!r} is a local folder that does not exist (looked in {path.resolve()}). "
                f"Give a folder made by pipe.save_pretrained(...), a Hub id such as "
                f"'stable-diffusion-v1-5/stable-diffusion-v1-5', or profile='tiny' for the offline test model."
            )
        if not (path / "model_index.json").exists():
            raise FileNotFoundError(
                f"model_id={model_id!r} is a folder without model_index.json, so it is not a diffusers pipeline. "
                f"Point at the folder that pipe.save_pretrained(...) wrote (it holds model_index.json, unet/, vae/)."
            )
        return str(path), "local"
    return model_id, "hub"


def has_variant(folder: str | Path, variant: str) -> bool:
    """Whether a local pipeline folder holds weights of ``variant`` (e.g. ``unet/*.fp16.safetensors``)."""
    return any(Path(folder).glob(f"*/*.{variant}.safetensors"))


def load_kwargs(kind: str, where: str, dtype: torch.dtype) -> dict:
    """The keyword arguments for ``from_pretrained``. The safety checker is never switched off here."""
    kwargs = {"dtype": dtype, "use_safetensors": True}
    # Half-precision files are half the download; the Hub's SD1.5 repo has them as the "fp16" variant.
    if dtype == torch.float16 and (kind == "hub" or (kind != "tiny" and has_variant(where, "fp16"))):
        kwargs["variant"] = "fp16"
    return kwargs


def _connection_errors() -> tuple[type[Exception], ...]:
    """Connection errors of the HTTP library huggingface_hub uses (httpx2 from 2.0, httpx before); not OSErrors."""
    errors = []
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def fetch(call, where: str, kind: str, kwargs: dict):
    """Run ``call(where, **kwargs)`` (``from_pretrained`` or ``download``) with the tutorial's fallbacks.

    Not every fine-tuned repo ships fp16 files: without them, the full-precision files are used (and cast on
    load). A Hub model that is neither cached nor reachable raises :class:`ModelNotAvailableError`.
    """
    try:
        try:
            return call(where, **kwargs)
        except ValueError as err:
            if kwargs.get("variant") and "variant" in str(err):
                print(
                    f"{where} has no {kwargs['variant']} files: using its full-precision files"
                    + (f" (cast to {kwargs['dtype']})" if "dtype" in kwargs else "")
                )
                return call(where, **{k: v for k, v in kwargs.items() if k != "variant"})
            raise
    except (OSError, *_connection_errors()) as err:
        if kwargs.get("use_safetensors") and "safetensors" in str(err):
            raise NoSafetensorsError(
                f"model_id={where!r} has no safetensors weights, only pickle files (.bin/.ckpt), which can run "
                f"code when loaded, so they are refused. Use a model that ships safetensors, or, if you trust its "
                f"author, allow them: load_pipeline({where!r}, use_safetensors=None) (safetensors where present)."
            ) from err
        if kind != "hub" or isinstance(err, ModelNotAvailableError):
            raise
        if not isinstance(err, OSError):  # the connection broke in the middle of a download
            raise ModelNotAvailableError(
                f"Could not load model_id={where!r}: the download broke off ({type(err).__name__}: {err}). "
                f"Run it again (`make download`): it resumes, and only whole files are ever used."
            ) from err
        raise ModelNotAvailableError(
            f"Could not load model_id={where!r}: it is not in the local Hugging Face cache and could not be "
            f"downloaded ({type(err).__name__}). Fetch it once where there is internet "
            f"(`make download`, or `hf download {where}`) and copy the cache folder (~/.cache/huggingface) here, "
            f"or run offline on the tiny test model: SD_PROFILE=tiny, or load_pipeline(profile='tiny')."
        ) from err


def from_pretrained_call(
    model_id: str | Path | None = None, profile: str | Profile | None = None, *, dtype: torch.dtype | None = None
) -> str:
    """The ``from_pretrained(...).to(...)`` call that :func:`load_pipeline` makes, written out as code.

    Example:
        >>> print(from_pretrained_call(profile="gpu"))
        StableDiffusionPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5", dtype=torch.float16, \
variant="fp16", use_safetensors=True).to("cuda")
    """
    prof = current_profile() if profile is None else resolve_profile(profile)
    where, kind = resolve_model(model_id, prof)
    kwargs = load_kwargs(kind, where, prof.dtype if dtype is None else dtype)
    args = [f'"{where}"', f"dtype={kwargs['dtype']}"]
    args += [f'variant="{kwargs["variant"]}"'] if "variant" in kwargs else []
    args += [f"use_safetensors={kwargs['use_safetensors']}"]
    return f'StableDiffusionPipeline.from_pretrained({", ".join(args)}).to("{prof.device}")'


def pretrained_source(
    model_id: str | Path | None = None, profile: str | Profile | None = None, *, dtype: torch.dtype | None = None
) -> tuple[str, str | None]:
    """What to hand ``StableDiffusionPipeline.from_pretrained`` yourself: where the model is, and which variant.

    The first is a Hub id, or a local folder (the shipped tiny model's for ``"tiny:base"``); the second is
    ``"fp16"`` when the profile loads half precision (from the Hub, or from a folder that holds
    ``*.fp16.safetensors``), else None: the repository's default files (full precision on the Hub). A Hub repository
    without fp16 files (``prompthero/openjourney``) then fails at once, where :func:`load_pipeline` falls back to its
    full-precision files. A lesson writes the call out with these two and the profile's dtype and device.

    Example:
        >>> pretrained_source(profile="gpu")
        ('stable-diffusion-v1-5/stable-diffusion-v1-5', 'fp16')
        >>> where, variant = pretrained_source(profile="tiny")
        >>> where.endswith("tiny-sd"), variant
        (True, None)
    """
    prof = current_profile() if profile is None else resolve_profile(profile)
    where, kind = resolve_model(model_id, prof)
    return where, load_kwargs(kind, where, prof.dtype if dtype is None else dtype).get("variant")


def load_pipeline(
    model_id: str | Path | None = None,
    profile: str | Profile | None = None,
    *,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    pipeline_class=None,
    **from_pretrained_kwargs,
):
    """Load a Stable Diffusion pipeline for a profile and move it to the profile's device.

    Args:
        model_id: a Hub id (``"prompthero/openjourney"``), a local folder, ``"tiny:base"`` / ``"tiny:finetuned"``,
            ``"replica:base"`` / ``"replica:finetuned"`` (SD1.5-size stand-ins, built once into the cache),
            or None for the profile's base model.
        profile: a profile name or Profile; None uses the active profile (see :func:`helpers.activate_profile`).
        device: override the profile's device (``"cuda"``, ``"mps"``, ``"cpu"``).
        dtype: override the profile's dtype, e.g. ``torch.float32``.
        pipeline_class: defaults to ``diffusers.StableDiffusionPipeline``.
        **from_pretrained_kwargs: passed on, e.g. ``revision=`` or ``token=``.

    Example:
        >>> pipe = load_pipeline("tiny:finetuned", profile="tiny")
        >>> pipe.dtype
        torch.float32
    """
    if "torch_dtype" in from_pretrained_kwargs:
        raise TypeError(
            "load_pipeline takes dtype=, not torch_dtype= (the older spelling, deprecated in diffusers): "
            "write load_pipeline(..., dtype=torch.float16)"
        )
    if pipeline_class is None:
        from diffusers import StableDiffusionPipeline as pipeline_class

    prof = current_profile() if profile is None else resolve_profile(profile)
    where, kind = resolve_model(model_id, prof)
    dtype = prof.dtype if dtype is None else dtype
    device = prof.device if device is None else device
    kwargs = {**load_kwargs(kind, where, dtype), **from_pretrained_kwargs}

    pipe = fetch(pipeline_class.from_pretrained, where, kind, kwargs)
    return pipe.to(device)


def load_tiny_autoencoder(
    dtype: torch.dtype = torch.float32, device="cpu", *, real_weights: bool | None = None, levels: int = 4
):
    """TAESD (diffusers' ``AutoencoderTiny``): the Hub's ``madebyollin/taesd`` with real weights, else a stand-in.

    Args:
        real_weights: True loads from the Hub (or its cache); False builds the random-weight stand-in of the same
            architecture (:mod:`helpers.standins.tiny_autoencoder`); None follows the active profile.
        levels: for the stand-in, the resolution levels of the VAE it replaces (4 for SD1.5 and the tiny model).

    Example:
        >>> type(load_tiny_autoencoder(real_weights=False)).__name__
        'AutoencoderTiny'
    """
    from .standins.tiny_autoencoder import HUB_ID, random_tiny_autoencoder

    if real_weights is None:
        real_weights = current_profile().real_weights
    if not real_weights:
        return random_tiny_autoencoder(device=device, dtype=dtype, levels=levels)
    from diffusers import AutoencoderTiny

    return fetch(AutoencoderTiny.from_pretrained, HUB_ID, "hub", {"dtype": dtype, "use_safetensors": True}).to(device)
