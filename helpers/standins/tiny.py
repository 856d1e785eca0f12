"""The tiny Stable Diffusion models that let every notebook run without a GPU or the Hub.

They have Stable Diffusion's architecture (UNet, VAE, CLIP text encoder and tokenizer, a scheduler with SD1.5's
noise schedule) at toy widths, trained by this project on a world of captioned 64 x 64 pictures
(:mod:`helpers.standins.world`) with the recipe in ``tools/train_tiny.py`` (``make train-tiny`` remakes them).
They ship in this repository in the Hub's layout, in ``helpers/standins/models/``, and load through the same
``from_pretrained`` call as the real model:

- ``tiny-sd`` (kind ``base``) stands in for ``stable-diffusion-v1-5/stable-diffusion-v1-5``;
- ``tiny-openjourney`` (kind ``finetuned``), fine-tuned from it on the ``mdjrny-v4 style``, for
  ``prompthero/openjourney``;
- ``tiny-mdjrny-lora``, a LoRA of the same style for the base model.

Example:
    >>> from helpers.standins.tiny import tiny_model_path
    >>> (tiny_model_path("base") / "model_index.json").exists()
    True
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CACHE_ENV_VAR = "SD_TUTORIAL_CACHE"

# The shipped models: their folder under models_root(), and the model each stands in for.
KINDS = {
    "base": {"folder": "tiny-sd", "stands_in_for": "stable-diffusion-v1-5/stable-diffusion-v1-5"},
    "finetuned": {"folder": "tiny-openjourney", "stands_in_for": "prompthero/openjourney"},
}
LORA_FOLDER = "tiny-mdjrny-lora"  # a LoRA of the mdjrny-v4 style for the base model (pytorch_lora_weights.safetensors)

# The real SD1.5 scheduler config, so that what a notebook prints about the scheduler is the same on tiny and real.
SD15_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def cache_root() -> Path:
    """Where stand-ins are built (the replica, the local Hub's repositories): ``$SD_TUTORIAL_CACHE``, else
    ``~/.cache/sd-tutorial``."""
    root = os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "sd-tutorial"
    return Path(root).expanduser()


def models_root() -> Path:
    """The folder of the shipped tiny models, in the Hub's layout (one folder per model)."""
    return Path(__file__).resolve().parent / "models"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte-to-printable-character table (every byte gets a visible character)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def tiny_model_path(kind: str = "base") -> Path:
    """The folder of the shipped tiny model ``kind`` (``"base"`` or ``"finetuned"``), ready for ``from_pretrained``."""
    if kind not in KINDS:
        raise ValueError(f"Unknown tiny model kind={kind!r}; use one of {sorted(KINDS)}")
    folder = models_root() / KINDS[kind]["folder"]
    if not (folder / "model_index.json").exists():
        raise FileNotFoundError(
            f"The tiny model {KINDS[kind]['folder']!r} is missing from {models_root()}: it ships with this "
            "repository (restore it with `git checkout -- helpers/standins/models`, or remake it with "
            "`make train-tiny`)"
        )
    return folder


def tiny_lora_path() -> Path:
    """The folder of the shipped LoRA (the ``mdjrny-v4 style`` for the base model), for ``load_lora_weights``."""
    return models_root() / LORA_FOLDER


def build_once(target: Path, write, marker: str = "model_index.json") -> Path:
    """Run ``write(folder)`` into a folder beside ``target``, then rename it to ``target``; return ``target``.

    Nothing is done when ``target/marker`` exists. The folder appears complete or not at all, so parallel
    builders are safe (the loser of a race throws its copy away).
    """
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / marker).exists():  # not a lost race with another builder
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
