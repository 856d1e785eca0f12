"""The SD1.5 replica: Stable Diffusion 1.5's exact architecture and configs, with deterministic random weights.

Every component the real ``stable-diffusion-v1-5/stable-diffusion-v1-5`` repository has, with its real config:
the UNet, the VAE, the CLIP text encoder, a CLIP tokenizer with the real vocabulary size (49408) and length (77),
the safety checker (CLIP ViT-L/14 vision tower and projection) and its feature extractor, the PNDM scheduler.
Its parameter counts equal the real model's (:data:`PARAMETER_COUNTS`). Its pictures are noise, but everything
that depends on size (memory, speed, FLOPs, fp16 files, batches of 16 at 512 px) is real.

Three ways to use it:

* :func:`replica_model_path` builds a replica once into the cache (on the GPU when there is one; about 20 s of
  random initialisation on a 2-core CPU) and returns a folder in the Hub's layout (``model_index.json``,
  ``unet/diffusion_pytorch_model.safetensors``, ...) holding the one dtype the device needs: fp32 files, or
  ``*.fp16.safetensors`` as the Hub publishes them. ``helpers.load_pipeline("replica:base")`` loads it.
* :func:`build_replica_pipeline` builds one in memory.
* On the meta device (:func:`replica_unet`, :func:`replica_vae`, :func:`replica_text_encoder`,
  :func:`replica_safety_checker`, :func:`replica_components`, all with ``device="meta"``, the default) the
  modules have every parameter's shape and dtype but no storage: count parameters or FLOPs in under a second,
  allocating nothing.

Example:
    >>> from helpers.standins.replica import parameter_counts, replica_unet
    >>> parameter_counts()["unet"]
    859520964
    >>> replica_unet().conv_in.weight.device.type
    'meta'
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from .tiny import BOS_TOKEN, EOS_TOKEN, SD15_SCHEDULER_CONFIG, _bytes_to_unicode, build_once, cache_root

# Bump when a config or the recipe below changes, so that old cached builds are not reused.
BUILD_VERSION = "v1"

# The same seeds as the tiny stand-ins: "finetuned" has the same architecture with other weights.
KINDS = {
    "base": {"seed": 0, "stands_in_for": "stable-diffusion-v1-5/stable-diffusion-v1-5"},
    "finetuned": {"seed": 1, "stands_in_for": "prompthero/openjourney"},
}

# The configs of the real repository's unet/, vae/, text_encoder/, safety_checker/, tokenizer/,
# feature_extractor/ and scheduler/ folders (the settings; bookkeeping keys such as _diffusers_version left out).
UNET_CONFIG = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

VAE_CONFIG = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

VOCAB_SIZE = 49408
MAX_LENGTH = 77

TEXT_ENCODER_CONFIG = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": MAX_LENGTH,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "projection_dim": 768,
    "vocab_size": VOCAB_SIZE,
}

# The safety checker is a CLIP ViT-L/14 vision tower plus a projection to 768 and the concept embeddings.
# Its CLIPConfig also carries a text config, which the checker never instantiates.
SAFETY_CHECKER_VISION_CONFIG = {
    "hidden_act": "quick_gelu",
    "hidden_size": 1024,
    "image_size": 224,
    "intermediate_size": 4096,
    "layer_norm_eps": 1e-05,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "patch_size": 14,
    "projection_dim": 768,
}
SAFETY_CHECKER_CONFIG = {
    "projection_dim": 768,
    "text_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "vocab_size": VOCAB_SIZE,
    },
    "vision_config": SAFETY_CHECKER_VISION_CONFIG,
}

FEATURE_EXTRACTOR_CONFIG = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": {"shortest_edge": 224},
}

TOKENIZER_CONFIG = {
    "bos_token": BOS_TOKEN,
    "eos_token": EOS_TOKEN,
    "pad_token": EOS_TOKEN,
    "unk_token": EOS_TOKEN,
    "model_max_length": MAX_LENGTH,
}

SCHEDULER_CONFIG = SD15_SCHEDULER_CONFIG

# The real model's parameter counts (a unit test checks the replica against them on the meta device).
PARAMETER_COUNTS = {
    "unet": 859_520_964,
    "vae": 83_653_863,
    "text_encoder": 123_060_480,
    "safety_checker": 303_981_588,
}

META = "meta"


def _check_kind(kind: str) -> int:
    if kind not in KINDS:
        raise ValueError(f"Unknown replica kind={kind!r}; use one of {sorted(KINDS)}")
    return KINDS[kind]["seed"]


@contextlib.contextmanager
def _seeded(seed: int | None, device: str | torch.device):
    """Build on ``device`` with the global RNG seeded to ``seed``, restoring the caller's RNG afterwards."""
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), device:
        if seed is not None:
            torch.manual_seed(seed)
        yield


def replica_unet(device: str | torch.device = META, seed: int | None = None):
    """SD1.5's ``UNet2DConditionModel`` (859,520,964 parameters); on the meta device by default (no storage)."""
    from diffusers import UNet2DConditionModel

    with _seeded(seed, device):
        return UNet2DConditionModel(**UNET_CONFIG)


def replica_vae(device: str | torch.device = META, seed: int | None = None):
    """SD1.5's ``AutoencoderKL`` (83,653,863 parameters); on the meta device by default."""
    from diffusers import AutoencoderKL

    with _seeded(seed, device):
        return AutoencoderKL(**VAE_CONFIG)


def replica_text_encoder(device: str | torch.device = META, seed: int | None = None):
    """SD1.5's CLIP ViT-L/14 text encoder, ``CLIPTextModel`` (123,060,480 parameters); meta device by default."""
    from transformers import CLIPTextConfig, CLIPTextModel

    with _seeded(seed, device):
        return CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG))


def replica_safety_checker(device: str | torch.device = META, seed: int | None = None):
    """SD1.5's ``StableDiffusionSafetyChecker`` (303,981,588 parameters); meta device by default.

    With random weights it flags nothing: its concept thresholds initialise to ones, far above any similarity.
    """
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    with _seeded(seed, device):
        return StableDiffusionSafetyChecker(CLIPConfig(**SAFETY_CHECKER_CONFIG))


BUILDERS = {
    "unet": replica_unet,
    "vae": replica_vae,
    "text_encoder": replica_text_encoder,
    "safety_checker": replica_safety_checker,
}


def replica_components(device: str | torch.device = META, seed: int | None = None) -> dict:
    """The four weighted components by name (``unet``, ``vae``, ``text_encoder``, ``safety_checker``).

    Each is built with the RNG reseeded to ``seed`` (as diffusers' own tests do), so a component's weights do not
    depend on which others were built. On the meta device (the default) nothing is allocated.
    """
    return {name: build(device, seed) for name, build in BUILDERS.items()}


def parameter_counts(device: str | torch.device = META) -> dict[str, int]:
    """Parameters per component, counted on the meta device by default (well under a second, no memory)."""
    return {name: sum(p.numel() for p in module.parameters()) for name, module in replica_components(device).items()}


def replica_vocab() -> dict[str, int]:
    """A byte-level CLIP BPE vocabulary of exactly 49408 entries, ids ordered as CLIP's.

    The 256 byte characters, their end-of-word forms, then tokens made by merging ASCII letters and digits
    (two, then three characters, each also as an end-of-word form) until the real size is reached; the two
    special tokens take the last ids (49406, 49407) as in CLIP. See :func:`replica_merges`.
    """
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    tokens += [a + b for a, b in _merge_pairs()]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {t: i for i, t in enumerate(tokens)}


def _merge_pairs() -> list[tuple[str, str]]:
    """The BPE merges, in priority order, sized so that the vocabulary has exactly :data:`VOCAB_SIZE` entries."""
    alphabet = "etaoinshrdlucmfwypvbgkqjxz0123456789"
    wanted = VOCAB_SIZE - 2 * 256 - 2
    pairs: list[tuple[str, str]] = []
    for end in ("", "</w>"):
        pairs += [(a, b + end) for a in alphabet for b in alphabet]
    for end in ("", "</w>"):
        for a in alphabet:
            for b in alphabet:
                pairs += [(a + b, c + end) for c in alphabet]
                if len(pairs) >= wanted:
                    return pairs[:wanted]
    raise AssertionError("the alphabet is too small for the vocabulary size")  # pragma: no cover


def replica_merges() -> list[tuple[str, str]]:
    """The merges of :func:`replica_vocab`: frequent-looking letter pairs, then triples."""
    return _merge_pairs()


def replica_tokenizer():
    """A ``CLIPTokenizer`` with SD1.5's vocabulary size (49408) and length (77); random merges, real special ids."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=replica_vocab(), merges=replica_merges(), **TOKENIZER_CONFIG)


def replica_feature_extractor():
    """The safety checker's ``CLIPImageProcessor``, with SD1.5's preprocessor config."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(**FEATURE_EXTRACTOR_CONFIG)


def replica_scheduler():
    """SD1.5's ``PNDMScheduler``."""
    from diffusers import PNDMScheduler

    return PNDMScheduler.from_config(SCHEDULER_CONFIG)


def default_build_device() -> str:
    """Where random initialisation is fastest: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_replica_pipeline(kind: str = "base", device: str | None = None, dtype: torch.dtype = torch.float32):
    """Build (in memory) the full replica pipeline ``kind``, on ``device`` (default: the GPU if any), in ``dtype``.

    The same weights every time on a given kind of device (CPU and CUDA random generators differ).
    """
    from diffusers import StableDiffusionPipeline

    seed = _check_kind(kind)
    device = device or default_build_device()
    parts = replica_components(device, seed)
    pipe = StableDiffusionPipeline(
        **parts,
        tokenizer=replica_tokenizer(),
        scheduler=replica_scheduler(),
        feature_extractor=replica_feature_extractor(),
        requires_safety_checker=True,
    )
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def dtype_name(dtype: torch.dtype) -> str:
    """``"fp16"``, ``"fp32"`` or ``"bf16"``: the folder suffix (and Hub variant) of a dtype."""
    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    if dtype not in names:
        raise ValueError(f"Unsupported replica dtype={dtype!r}; use one of {list(names)}")
    return names[dtype]


def replica_model_path(
    kind: str = "base",
    dtype: torch.dtype = torch.float32,
    *,
    device: str | None = None,
    root: Path | None = None,
) -> Path:
    """Build the replica ``kind`` once into the cache, in ``dtype``, and return its folder (the Hub's layout).

    fp32 is written as plain ``*.safetensors``, fp16 and bf16 as the Hub's variant files
    (``unet/diffusion_pytorch_model.fp16.safetensors``), so ``from_pretrained(folder, variant="fp16")`` is the
    same call as for the real repository. ``device`` is where the weights are initialised (default: the GPU if
    there is one). The folder appears complete or not at all (built beside it, then renamed). The cache is
    ``$SD_TUTORIAL_CACHE/replica-v1/<kind>-<fp32|fp16|bf16>`` (``~/.cache/sd-tutorial`` by default); about
    5.5 GB in fp32, 2.7 GB in fp16.
    """
    _check_kind(kind)
    suffix = dtype_name(dtype)
    target = (root or cache_root()) / f"replica-{BUILD_VERSION}" / f"{kind}-{suffix}"

    def write(folder: Path) -> None:
        pipe = build_replica_pipeline(kind, device=device, dtype=dtype)
        pipe.save_pretrained(folder, safe_serialization=True, variant=None if dtype == torch.float32 else suffix)
        (folder / "README.md").write_text(
            f"# SD1.5 replica ({kind}, {suffix})\n\nRandom weights with Stable Diffusion 1.5's exact architecture "
            f"and configs. Stands in for `{KINDS[kind]['stands_in_for']}` where the real weights cannot be had. "
            f"Its pictures are noise; its sizes, memory and speed are real.\n"
        )

    return build_once(target, write)
