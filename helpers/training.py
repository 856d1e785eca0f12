"""Training a tiny text-to-image model on the world of captioned pictures, as Stable Diffusion was trained.

The recipe follows diffusers' own ``examples/text_to_image/train_text_to_image.py`` at toy scale:

1. an autoencoder (:class:`~diffusers.AutoencoderKL`) learns to squeeze a 64 x 64 picture into 4 x 8 x 8 latents
   and back (:func:`train_autoencoder`); its ``scaling_factor`` is measured so the latents have unit spread
   (:func:`measure_scaling_factor`), as SD1.5's 0.18215 was;
2. a UNet (:class:`~diffusers.UNet2DConditionModel`) and a CLIP text encoder learn together to predict the noise
   that :meth:`~diffusers.DDPMScheduler.add_noise` mixed into the latents, given the caption
   (:func:`train_text_to_image`), with SD1.5's noise schedule; the caption is left empty some of the time, so the
   model also learns to draw without one, which classifier-free guidance needs;
3. the parts go together into a :class:`~diffusers.StableDiffusionPipeline` (:func:`assemble_pipeline`) that
   ``save_pretrained`` writes in the Hub's layout and ``from_pretrained`` loads like any other.

:class:`accelerate.Accelerator` runs every step, so the same code trains on a CPU, a GPU or several.

Example (a few steps of each; the lesson "train your own" runs more):
    >>> from helpers.training import new_autoencoder, train_autoencoder
    >>> vae = new_autoencoder()
    >>> losses = train_autoencoder(vae, steps=2, batch_size=2, progress=False)
    >>> len(losses)
    2
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .standins import world
from .standins.tiny import BOS_TOKEN, EOS_TOKEN, SD15_SCHEDULER_CONFIG, _bytes_to_unicode

# CLIP's own pre-tokenizer pattern (lower-cased words, single digits, runs of punctuation), without the regex module.
_WORDS = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+", re.IGNORECASE)


@dataclass(frozen=True)
class Sizes:
    """The widths of a tiny model: the shipped one by default; the lesson trains a smaller one.

    Args:
        unet_channels: the UNet's block widths (one block per entry; the last one without attention).
        unet_layers: resnet layers per UNet block.
        text_width: the text encoder's hidden size (and the UNet's cross-attention width).
        text_layers: the text encoder's transformer layers.
    """

    unet_channels: tuple[int, ...] = (64, 128, 128)
    unet_layers: int = 1
    text_width: int = 64
    text_layers: int = 2


def world_words() -> list[str]:
    """Every word the world's captions use, lower-cased and sorted."""
    captions = [t.caption() for t in world.all_things()]
    captions += [text for texts in world.SCENE_CAPTIONS.values() for text in texts]
    captions += ["a thing on", "in the middle", world.TRIGGER]
    return sorted({w.lower() for text in captions for w in _WORDS.findall(text)})


def world_tokenizer():
    """A :class:`~transformers.CLIPTokenizer` whose vocabulary holds every byte and each of the world's words whole.

    A word of the world is one token (byte-pair merges build it letter by letter); any other text still tokenizes,
    a letter at a time, as CLIP's own tokenizer does with words it has never seen.
    """
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars])}
    merges = []
    # Longer words first: their merges rank higher, so no shorter word's merge splits them.
    for word in sorted(world_words(), key=lambda w: (-len(w), w)):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for piece in pieces[1:]:
            merges.append(f"{left} {piece}")
            left += piece
            vocab.setdefault(left, len(vocab))
    merges = list(dict.fromkeys(merges))
    vocab[BOS_TOKEN], vocab[EOS_TOKEN] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(m.split(" ")) for m in merges],
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        model_max_length=77,  # as CLIP's; without it padding fails with "OverflowError: int too big to convert"
    )


def new_autoencoder(seed: int = 0):
    """SD1.5's autoencoder at toy width: four blocks, so latents are 8 times smaller than the picture."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=world.SIZE,
    )


def new_text_encoder(tokenizer, sizes: Sizes = Sizes(), seed: int = 0):
    """A CLIP text encoder of ``sizes.text_layers`` layers over ``tokenizer``'s vocabulary."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=sizes.text_width,
            intermediate_size=sizes.text_width * 4,
            num_hidden_layers=sizes.text_layers,
            num_attention_heads=4,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def new_unet(sizes: Sizes = Sizes(), seed: int = 0):
    """SD1.5's UNet at toy width on 8 x 8 latents: cross-attention in every block but the deepest."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    n = len(sizes.unet_channels)
    return UNet2DConditionModel(
        sample_size=world.SIZE // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=sizes.unet_channels,
        layers_per_block=sizes.unet_layers,
        down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
        cross_attention_dim=sizes.text_width,
        attention_head_dim=8,
        norm_num_groups=32,
    )


def noise_scheduler():
    """The scheduler that noises the training latents: SD1.5's betas, as its training used."""
    from diffusers import DDPMScheduler

    keys = ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "prediction_type")
    return DDPMScheduler(**{k: SD15_SCHEDULER_CONFIG[k] for k in keys})


def to_tensor(pictures) -> torch.Tensor:
    """Pictures as the autoencoder takes them: a float batch in [-1, 1], channels first."""
    array = np.stack([np.asarray(p.convert("RGB"), np.float32) for p in pictures]) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _bar(iterable, **options):
    """tqdm's bar; in a notebook the one that is saved finished (:mod:`helpers.progress`), as diffusers' bars are."""
    from .progress import NotebookProgressBar, in_notebook

    return (NotebookProgressBar if in_notebook() else tqdm)(iterable, mininterval=2.0, **options)


def _loop(steps: int, progress: bool, description: str):
    return _bar(range(steps), desc=description, disable=not progress)


def train_autoencoder(
    vae,
    steps: int = 800,
    batch_size: int = 32,
    lr: float = 1e-3,
    kl_weight: float = 1e-6,
    crop: int = 32,
    object_weight: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Teach ``vae`` to rebuild the world's pictures (mean squared error, plus a little KL as SD's VAE had).

    It learns on random ``crop`` x ``crop`` squares of the pictures (a quarter of the work at 32): its convolutions
    do the same everywhere, so it then rebuilds whole pictures as well. With ``object_weight`` above 1, the error on
    the pixels that stand out from their row's background (:func:`object_mask`) counts that many times: an object
    covers a few percent of a picture, and plain MSE lets a small one's colour drift (SD's own autoencoder adds a
    perceptual loss and a discriminator for the same reason). Returns the loss of every step.
    """
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    vae, optimizer = accelerator.prepare(vae, optimizer)
    sampler = world.Sampler(seed=seed, style_share=0.2)
    vae.train()
    losses = []
    for _ in (bar := _loop(steps, progress, "autoencoder")):
        pictures, _ = sampler.batch(batch_size)
        pixels = to_tensor(pictures).to(accelerator.device)
        if crop < world.SIZE:
            x, y = (int(v) for v in torch.randint(0, (world.SIZE - crop) // 8 + 1, (2,)) * 8)
            pixels = pixels[:, :, y : y + crop, x : x + crop]
        posterior = vae.encode(pixels).latent_dist
        rebuilt = vae.decode(posterior.sample()).sample
        weights = 1.0 + (object_weight - 1.0) * object_mask(pixels)
        loss = (weights * (rebuilt - pixels) ** 2).mean() + kl_weight * posterior.kl().mean()
        accelerator.backward(loss)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", refresh=False)
    vae.eval()
    return losses


def object_mask(pixels: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """1 where a pixel of ``pixels`` (a batch in [-1, 1]) stands out from the median of its row or of its column.

    The world's backgrounds change from top to bottom only, and an object covers under half of any row and column,
    so those medians are the background there (as :func:`helpers.standins.world.judge` reads a picture); the
    style's frame stands out from its columns' medians, and the judge reads the style from it.
    """
    rows = (pixels - pixels.median(dim=3, keepdim=True).values).norm(dim=1, keepdim=True)
    columns = (pixels - pixels.median(dim=2, keepdim=True).values).norm(dim=1, keepdim=True)
    return (torch.maximum(rows, columns) > threshold).float()


@torch.no_grad()
def measure_scaling_factor(vae, n: int = 512, seed: int = 1) -> float:
    """One over the spread of the latents of ``n`` pictures: the factor that gives the UNet latents of unit spread."""
    sampler = world.Sampler(seed=seed)
    latents = [vae.encode(to_tensor(sampler.batch(64)[0])).latent_dist.sample() for _ in range(math.ceil(n / 64))]
    return float(1.0 / torch.cat(latents).std())


@dataclass
class LatentPictures:
    """Pictures of the world already encoded by the autoencoder: each one's latent mean and spread, and its caption.

    Encoding once, before training, is what makes the UNet's training fast on a CPU: the frozen autoencoder would
    otherwise take twice the UNet's time at every step. A fresh sample is still drawn from each picture's latent
    distribution every time it is used, as encoding on the fly would.
    """

    mean: torch.Tensor
    std: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def batch(self, indices: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        noise = torch.randn(self.mean[indices].shape, generator=generator)
        return self.mean[indices] + self.std[indices] * noise, [self.captions[i] for i in indices.tolist()]


@torch.no_grad()
def encode_pictures(vae, sampler: world.Sampler, n: int, progress: bool = True) -> LatentPictures:
    """Draw ``n`` pictures from ``sampler`` and encode them with ``vae`` (scaled by its ``scaling_factor``)."""
    means, stds, captions = [], [], []
    scale = vae.config.scaling_factor
    for start in (bar := _bar(range(0, n, 64), desc="encoding", disable=not progress)):
        pictures, texts = sampler.batch(min(64, n - start))
        dist = vae.encode(to_tensor(pictures).to(vae.device)).latent_dist
        means.append(dist.mean.cpu() * scale)
        stds.append(dist.std.cpu() * scale)
        captions += texts
        bar.set_postfix(pictures=len(captions), refresh=False)
    return LatentPictures(torch.cat(means), torch.cat(stds), captions)


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    """Token ids padded to the tokenizer's length, as the pipeline pads them."""
    return tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def train_text_to_image(
    unet,
    text_encoder,
    tokenizer,
    data: LatentPictures,
    steps: int = 4000,
    batch_size: int = 64,
    lr: float = 5e-4,
    empty_share: float = 0.1,
    snr_gamma: float | None = 5.0,
    ema_decay: float | None = None,
    seed: int = 0,
    every: int = 0,
    on_sample: Callable[[int, list[float]], None] | None = None,
    progress: bool = True,
) -> list[float]:
    """Train ``unet`` (and ``text_encoder``, when it has parameters that require grad) to denoise the world's latents.

    Each step, as diffusers' ``train_text_to_image.py``: take a batch of encoded pictures and their captions
    (:func:`encode_pictures`, the frozen autoencoder's latents times its ``scaling_factor``), pick a timestep per
    picture, add that much noise with SD1.5's schedule, replace the caption by the empty one ``empty_share`` of the
    time, and regress the noise (weighted by min-SNR when ``snr_gamma`` is set, as that script's ``--snr_gamma``).
    With ``ema_decay``, an exponential moving average of the UNet's weights is kept and copied in at the end
    (``diffusers.training_utils.EMAModel``).

    ``on_sample(step, losses)`` is called every ``every`` steps (and at the end), for a lesson to show progress.
    Returns the loss of every step.
    """
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel, compute_snr

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    scheduler = noise_scheduler()
    trainable = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=1e-2)
    warmup = min(200, steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    ema = EMAModel(unet.parameters(), decay=ema_decay) if ema_decay else None
    unet, text_encoder, optimizer = accelerator.prepare(unet, text_encoder, optimizer)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    unet.train()
    text_encoder.train()
    for step in (bar := _loop(steps, progress, "text-to-image")):
        latents, captions = data.batch(torch.randint(0, len(data), (batch_size,), generator=generator), generator)
        latents = latents.to(accelerator.device)
        captions = ["" if torch.rand(1, generator=generator).item() < empty_share else c for c in captions]
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator)
        timesteps = timesteps.to(latents.device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        states = text_encoder(tokenize(tokenizer, captions).to(latents.device), return_dict=False)[0]
        prediction = unet(noisy, timesteps, states, return_dict=False)[0]
        if snr_gamma:
            snr = compute_snr(scheduler, timesteps)
            weights = torch.clamp(snr, max=snr_gamma) / snr  # min-SNR weighting for epsilon prediction
            loss = (F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3)) * weights).mean()
        else:
            loss = F.mse_loss(prediction, noise)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if ema:
            ema.step(unet.parameters())
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        if on_sample and every and (step + 1) % every == 0 and step + 1 < steps:
            unet.eval()
            on_sample(step + 1, losses)
            unet.train()
    if ema:
        ema.copy_to(unet.parameters())
    unet.eval()
    text_encoder.eval()
    if on_sample:
        on_sample(steps, losses)
    return losses


# The tiny models' default scheduler: SD1.5's betas and settings, Euler's update. SD1.5 ships PNDMScheduler, whose
# multistep updates draw these small models poorly in the tiny profile's 10 steps at guidance 7.5 (held-out captions:
# colour 16%, position 36% against Euler's 85% and 97%; docs/reports/tiny-model/README.md).
SCHEDULER = "EulerDiscreteScheduler"


def default_scheduler():
    """A new :data:`SCHEDULER` with SD1.5's noise schedule: what the tiny models ship as their default."""
    import diffusers

    return getattr(diffusers, SCHEDULER).from_config(SD15_SCHEDULER_CONFIG)


def assemble_pipeline(vae, text_encoder, tokenizer, unet):
    """The trained parts as a :class:`~diffusers.StableDiffusionPipeline`, with SD1.5's noise schedule in an
    :class:`~diffusers.EulerDiscreteScheduler` (:data:`SCHEDULER`'s reason)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=default_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


class SampleStrips:
    """Pictures drawn during training, a strip every time it is called: to watch a model learn.

    Pass it as ``on_sample`` to :func:`train_text_to_image`: at each call it assembles the pipeline from the parts
    being trained and draws ``prompts`` (one seed each, the same every time), so the strips differ only by what the
    model has learned since the last one. :meth:`grid` lays them out, one row per call.
    """

    def __init__(self, vae, text_encoder, tokenizer, unet, prompts: list[str], seed: int = 0, steps: int = 10):
        self.parts = (vae, text_encoder, tokenizer, unet)
        self.prompts, self.seed, self.steps = list(prompts), seed, steps
        self.rows: list[tuple[int, list]] = []

    def __call__(self, step: int, losses: list[float]) -> None:
        pipe = assemble_pipeline(*self.parts)
        pipe.set_progress_bar_config(disable=True)
        generators = [torch.Generator("cpu").manual_seed(self.seed + i) for i in range(len(self.prompts))]
        with torch.no_grad():
            pictures = pipe(prompt=self.prompts, generator=generators, num_inference_steps=self.steps).images
        self.rows.append((step, pictures))

    def grid(self):
        """One row per strip, each picture labelled with its step; a column per prompt."""
        from .grid import labelled_grid

        pictures = [p for _, row in self.rows for p in row]
        labels = [f"step {step}" for step, row in self.rows for _ in row]
        return labelled_grid(pictures, labels, rows=len(self.rows), cols=len(self.prompts), min_width=128)


def save_model(pipe, folder) -> Path:
    """Save ``pipe`` with ``save_pretrained`` into ``folder``, or ``folder-2``, ``folder-3``... if it exists.

    Nothing already saved is overwritten. Returns the folder it saved into.
    """
    folder = Path(folder)
    target, n = folder, 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}-{n}")
    pipe.save_pretrained(target)
    return target
