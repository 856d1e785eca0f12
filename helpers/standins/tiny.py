"""The tiny Stable Diffusion pipelines that let every notebook run without a GPU or the Hub.

They have the real architecture (UNet, VAE, CLIP text encoder, tokenizer, the SD1.5 PNDM scheduler) at toy
widths, with random but seeded weights. They are saved once into a cache folder in the real diffusers layout,
then loaded through the same ``from_pretrained`` call that loads the real model, so tests exercise the real
code path. Their pictures are noise.

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

import torch

# Bump when the recipe below changes, so that old cached builds are not reused.
BUILD_VERSION = "v2"
CACHE_ENV_VAR = "SD_TUTORIAL_CACHE"

# Different seeds give the "fine-tuned" stand-in the same architecture with other weights.
KINDS = {
    "base": {"seed": 0, "stands_in_for": "stable-diffusion-v1-5/stable-diffusion-v1-5"},
    "finetuned": {"seed": 1, "stands_in_for": "prompthero/openjourney"},
}

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

# The trained tiny models shipped in this repository (``make train-tiny`` remakes them), by what they stand in for.
SHIPPED_MODELS = {"base": "tiny-sd", "finetuned": "tiny-openjourney", "lora": "tiny-mdjrny-lora"}

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def cache_root() -> Path:
    """Where tiny models are built: ``$SD_TUTORIAL_CACHE``, else ``~/.cache/sd-tutorial``."""
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


def tiny_vocab() -> dict[str, int]:
    """A small byte-level CLIP BPE vocabulary: every byte, its end-of-word form, and the two special tokens.

    With no merges, any text tokenizes one character per token. The special tokens come last, as in CLIP.
    """
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + [BOS_TOKEN, EOS_TOKEN]
    return {t: i for i, t in enumerate(tokens)}


def build_tiny_pipeline(kind: str = "base"):
    """Build (in memory) the tiny pipeline ``kind``: the same weights every time."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if kind not in KINDS:
        raise ValueError(f"Unknown tiny model kind={kind!r}; use one of {sorted(KINDS)}")
    seed = KINDS[kind]["seed"]

    tokenizer = CLIPTokenizer(
        vocab=tiny_vocab(),
        merges=[],
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        # Without it, padding to "max_length" fails with "OverflowError: int too big to convert".
        model_max_length=77,
    )

    # Reseed before each sub-model (as diffusers' own fast tests do), without disturbing the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=8,  # latents of 8 x 8: pictures of 64 x 64 by default
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
        )
        torch.manual_seed(seed)
        # Four blocks, as SD1.5's VAE: latents 8 times smaller than the picture (vae_scale_factor 8), so the UNet
        # works on 8 x 8 latents at 64 px as SD1.5's on 64 x 64 at 512 px. (With two blocks, v1 had 32 x 32 latents
        # at 64 px: 16 times the UNet's work per step.)
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 64, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            sample_size=64,
            scaling_factor=0.18215,
        )
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                hidden_size=32,
                intermediate_size=37,
                layer_norm_eps=1e-05,
                num_attention_heads=4,
                num_hidden_layers=5,
                vocab_size=len(tokenizer),
                max_position_embeddings=77,
            )
        )

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_model_path(kind: str = "base", root: Path | None = None) -> Path:
    """Build the tiny pipeline ``kind`` once into the cache folder and return that folder.

    The folder appears complete or not at all (built beside it, then renamed), so parallel runs are safe.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown tiny model kind={kind!r}; use one of {sorted(KINDS)}")
    target = (root or cache_root()) / f"tiny-{BUILD_VERSION}" / kind

    def write(folder: Path) -> None:
        build_tiny_pipeline(kind).save_pretrained(folder, safe_serialization=True)
        (folder / "README.md").write_text(
            f"# Tiny test model ({kind})\n\nRandom weights, the Stable Diffusion architecture at toy size. "
            f"Stands in for `{KINDS[kind]['stands_in_for']}` when there is no GPU. Its pictures are noise.\n"
        )

    return build_once(target, write)


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
