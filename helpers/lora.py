"""Which LoRA lesson 06 loads on each profile, named as diffusers' ``load_lora_weights`` takes it.

A LoRA is a small file of low-rank changes to some of a model's weights. diffusers loads one into a pipeline
(``pipe.load_lora_weights(repo, weight_name=...)``, through peft), weighs it (``pipe.set_adapters``) and takes it
out again (``pipe.unload_lora_weights()``). The lesson shows the style that Openjourney learned by fine-tuning, as a
LoRA on the base model:

* with the real model (profiles gpu, mps, cpu): PromptHero's ``prompthero/openjourney-lora``, one file
  ``openjourneyLora.safetensors`` (151 MB, Kohya's format, which ``load_lora_weights`` converts as it loads);
* on the tiny profile: ``tiny-mdjrny-lora``, trained by this project on the tiny world's ``mdjrny-v4 style``
  pictures for the tiny base model (``helpers/standins/models``);
* on the replica profile: a LoRA of random weights shaped for SD1.5's UNet, built once into the cache, so that the
  same calls run on the real architecture (its pictures are noise, as all the replica's are).

Example:
    >>> style_lora("gpu")
    LoraSource(repo='prompthero/openjourney-lora', weight_name='openjourneyLora.safetensors')
    >>> pipe.load_lora_weights(*style_lora(), adapter_name="mdjrny")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from .profiles import Profile, current_profile, resolve_profile
from .standins.tiny import build_once, cache_root, tiny_lora_path

OPENJOURNEY_LORA_ID = "prompthero/openjourney-lora"
OPENJOURNEY_LORA_FILE = "openjourneyLora.safetensors"
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"  # the file name diffusers' save_lora_weights writes

# The replica's LoRA: rank 4 on the attention projections of every transformer block, deterministic weights.
REPLICA_LORA_VERSION = "v1"
REPLICA_LORA_RANK = 4
REPLICA_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
REPLICA_LORA_SEED = 6


class LoraSource(NamedTuple):
    """Where a LoRA is: ``pipe.load_lora_weights(source.repo, weight_name=source.weight_name)`` loads it.

    ``repo`` is a Hub id or a local folder; ``weight_name`` the ``.safetensors`` file in it.
    """

    repo: str
    weight_name: str


def style_lora(profile: str | Profile | None = None) -> LoraSource:
    """The LoRA of Openjourney's style for the profile's base model (the active profile's by default).

    Raises:
        ValueError: an unknown profile name (the message lists the known ones).

    Example:
        >>> style_lora("tiny").weight_name
        'pytorch_lora_weights.safetensors'
    """
    prof = current_profile() if profile is None else resolve_profile(profile)
    if prof.base_model.startswith("tiny:"):
        return LoraSource(str(tiny_lora_path()), DIFFUSERS_LORA_FILE)
    if prof.base_model.startswith("replica:"):
        return LoraSource(str(replica_lora_path()), DIFFUSERS_LORA_FILE)
    return LoraSource(OPENJOURNEY_LORA_ID, OPENJOURNEY_LORA_FILE)


def replica_lora_state_dict(rank: int = REPLICA_LORA_RANK, seed: int = REPLICA_LORA_SEED) -> dict[str, torch.Tensor]:
    """A LoRA for SD1.5's UNet in diffusers' format (``unet.<layer>.lora_A.weight`` / ``lora_B``), seeded weights.

    The layer names and sizes come from the replica UNet on the meta device, so nothing but the LoRA is allocated.
    ``lora_A`` is drawn with standard deviation ``1 / sqrt(in_features)`` and ``lora_B`` with 0.01: a change small
    enough to keep half precision finite, large enough to change the pictures.
    """
    from .standins.replica import replica_unet

    generator = torch.Generator("cpu").manual_seed(seed)
    state = {}
    for name, module in replica_unet().named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(REPLICA_LORA_TARGETS):
            down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=generator) * 0.01
            state[f"unet.{name}.lora_A.weight"] = down
            state[f"unet.{name}.lora_B.weight"] = up
    return state


def replica_lora_path(root: Path | None = None) -> Path:
    """Build the replica's LoRA once into the cache (``$SD_TUTORIAL_CACHE`` or ``~/.cache/sd-tutorial``); its folder."""
    from safetensors.torch import save_file

    target = (root or cache_root()) / f"replica-lora-{REPLICA_LORA_VERSION}"

    def write(folder: Path) -> None:
        save_file(replica_lora_state_dict(), str(folder / DIFFUSERS_LORA_FILE), metadata={"format": "pt"})

    return build_once(target, write, marker=DIFFUSERS_LORA_FILE)
