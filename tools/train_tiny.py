"""``make train-tiny``: remake the shipped tiny models from nothing, with the recipe written down here.

Stages, each saved under ``--work`` (default ``build/train-tiny/``) and skipped when already done there, so an
interrupted run resumes where it stopped:

1. ``autoencoder``: :func:`helpers.training.train_autoencoder`, then its ``scaling_factor`` measured and saved;
2. ``base``: the UNet and the text encoder trained together on the world's captioned pictures (stands in for
   ``stable-diffusion-v1-5/stable-diffusion-v1-5``);
3. ``autoencoder-refined``: the autoencoder trained on from where it stopped, with the error on the objects' pixels
   weighted, so that a small object keeps its colour through it; its latents move a little;
4. ``base-resumed``: the base's training resumed on the refined autoencoder's latents (SD1.5's training, too,
   resumed from an earlier checkpoint's weights: v1-2's);
5. ``finetuned``: the base UNet fine-tuned on pictures in the ``mdjrny-v4 style`` with its trigger word, beside
   ordinary ones (stands in for ``prompthero/openjourney``, fine-tuned from SD1.5 the same way);
6. ``lora``: a LoRA of the same style on the base UNet (peft), as diffusers' LoRA training script makes one.

Then the three models are written in the Hub's layout into ``--out`` (default ``helpers/standins/models/``), weights
in half precision, each with a model card, and the loss curves beside them. ``make eval-tiny`` then measures
what they learned (:mod:`tools.eval_tiny`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from helpers import training
from helpers.standins import world
from helpers.standins.tiny import KINDS, LORA_FOLDER, models_root

# The recipe. Changing a number here and running `make train-tiny` remakes the shipped models.


@dataclass(frozen=True)
class Recipe:
    autoencoder_steps: int = 2_400
    autoencoder_batch: int = 32
    autoencoder_lr: float = 1e-3
    # The error on the pixels of objects (and of the style's frame) counts this many times (training.object_mask).
    # Plain MSE (1.0) at first: an autoencoder weighted from the start moved the latents so that the base learned
    # positions late (docs/reports/cpu-timings.md); the refine_ stage below weighs the objects instead.
    autoencoder_object_weight: float = 1.0
    base_pictures: int = 24_000  # encoded once; each is seen several times, with a fresh latent sample each time
    base_steps: int = 4_000
    base_batch: int = 32
    base_lr: float = 4e-4
    # No EMA: the text encoder learns beside the UNet, and an average of the UNet's past weights would not match the
    # text encoder's last ones (diffusers' script, which freezes the text encoder, can use --use_ema).
    base_ema_decay: float | None = None
    empty_share: float = 0.1  # captions left empty, for classifier-free guidance
    # Then the autoencoder trains on with the objects' pixels weighted, keeping its scaling_factor: its round trip
    # keeps the object's colour in 94% of held-out pictures (plain MSE: 79%). The base resumes on its latents, which
    # moved little, and keeps the positions it learned (docs/reports/cpu-timings.md, "refined autoencoder").
    refine_steps: int = 2_500
    refine_lr: float = 5e-4
    refine_object_weight: float = 10.0
    resume_steps: int = 2_000
    resume_lr: float = 2e-4
    snr_gamma: float = 5.0
    style_pictures: int = 4_000  # half in the style with its trigger word, half without (the model keeps both)
    finetune_steps: int = 1_500
    finetune_lr: float = 4e-4
    # The fine-tune also trains the text encoder (its own copy, shipped with it): the base never saw the trigger's
    # words, so their embeddings are still the random ones it started from.
    finetune_text_encoder: bool = True
    lora_steps: int = 1_500
    lora_lr: float = 2e-3
    lora_rank: int = 8
    seed: int = 0


LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]


def _log(message: str) -> None:
    print(f"[train-tiny {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _save_losses(path: Path, losses: list[float], seconds: float) -> None:
    path.write_text(json.dumps({"seconds": round(seconds, 1), "losses": [round(v, 5) for v in losses]}))


def stage_autoencoder(work: Path, recipe: Recipe):
    from diffusers import AutoencoderKL

    folder = work / "autoencoder"
    if (folder / "config.json").exists():
        return AutoencoderKL.from_pretrained(folder)
    _log("autoencoder: training")
    start = time.perf_counter()
    vae = training.new_autoencoder(seed=recipe.seed)
    losses = training.train_autoencoder(
        vae,
        steps=recipe.autoencoder_steps,
        batch_size=recipe.autoencoder_batch,
        lr=recipe.autoencoder_lr,
        object_weight=recipe.autoencoder_object_weight,
        seed=recipe.seed,
    )
    factor = training.measure_scaling_factor(vae)
    vae.register_to_config(scaling_factor=round(factor, 5))
    _log(f"autoencoder: loss {sum(losses[-50:]) / 50:.4f}, scaling_factor {factor:.4f}")
    vae.save_pretrained(folder)
    _save_losses(folder / "losses.json", losses, time.perf_counter() - start)
    return vae


def _text_to_image(
    folder: Path, unet, text_encoder, tokenizer, data, steps, lr, recipe: Recipe, ema: float | None, **callback
):
    start = time.perf_counter()
    losses = training.train_text_to_image(
        unet,
        text_encoder,
        tokenizer,
        data,
        steps=steps,
        batch_size=recipe.base_batch,
        lr=lr,
        empty_share=recipe.empty_share,
        snr_gamma=recipe.snr_gamma,
        ema_decay=ema,
        seed=recipe.seed,
        **callback,
    )
    _save_losses(folder / "losses.json", losses, time.perf_counter() - start)
    return losses


def stage_base(work: Path, recipe: Recipe, vae):
    from diffusers import StableDiffusionPipeline

    folder = work / "base"
    if (folder / "model_index.json").exists():
        return StableDiffusionPipeline.from_pretrained(folder)
    _log(f"base: encoding {recipe.base_pictures} pictures")
    data = training.encode_pictures(vae, world.Sampler(seed=recipe.seed + 1), recipe.base_pictures)
    tokenizer = training.world_tokenizer()
    text_encoder = training.new_text_encoder(tokenizer, seed=recipe.seed)
    unet = training.new_unet(seed=recipe.seed)
    steps, lr, ema = recipe.base_steps, recipe.base_lr, recipe.base_ema_decay
    return _train_base(work, "base", recipe, (vae, text_encoder, tokenizer, unet), data, steps, lr, ema)


def _train_base(work: Path, stage: str, recipe: Recipe, parts: tuple, data, steps: int, lr: float, ema):
    """Train the UNet and the text encoder of ``parts`` (vae, text encoder, tokenizer, UNet) on ``data``, checking
    held-out captions every 500 steps; the pipeline, saved as ``stage`` under ``work``."""
    vae, text_encoder, tokenizer, unet = parts
    _log(f"{stage}: training {steps} steps")
    staging = work / f"{stage}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    pipe = training.assemble_pipeline(vae, text_encoder, tokenizer, unet)
    check = lambda step, losses: _progress_check(stage, pipe, step, losses)  # noqa: E731
    _text_to_image(staging, unet, text_encoder, tokenizer, data, steps, lr, recipe, ema, on_sample=check, every=500)
    pipe.save_pretrained(staging)
    staging.rename(work / stage)
    return pipe


def stage_refined_autoencoder(work: Path, recipe: Recipe, vae):
    """The autoencoder trained on from where it stopped, the error on the objects' pixels weighted; it keeps its
    ``scaling_factor``, which the base learned with (its latents' spread grows a few percent)."""
    from diffusers import AutoencoderKL

    folder = work / "autoencoder-refined"
    if (folder / "config.json").exists():
        return AutoencoderKL.from_pretrained(folder)
    _log("autoencoder-refined: training")
    start = time.perf_counter()
    vae = copy.deepcopy(vae)
    steps, batch, lr = recipe.refine_steps, recipe.autoencoder_batch, recipe.refine_lr
    weight = recipe.refine_object_weight
    losses = training.train_autoencoder(vae, steps, batch, lr, object_weight=weight, seed=recipe.seed + 3)
    vae.requires_grad_(False)
    _log(f"autoencoder-refined: loss {sum(losses[-50:]) / len(losses[-50:]):.4f}")
    vae.save_pretrained(folder)
    _save_losses(folder / "losses.json", losses, time.perf_counter() - start)
    return vae


def stage_resumed_base(work: Path, recipe: Recipe, base, vae):
    """The base's UNet and text encoder trained on from where they stopped, on the world's pictures (the same ones)
    encoded by the refined autoencoder ``vae``."""
    from diffusers import StableDiffusionPipeline

    folder = work / "base-resumed"
    if (folder / "model_index.json").exists():
        return StableDiffusionPipeline.from_pretrained(folder)
    _log(f"base-resumed: encoding {recipe.base_pictures} pictures")
    data = training.encode_pictures(vae, world.Sampler(seed=recipe.seed + 1), recipe.base_pictures)
    unet = copy.deepcopy(base.unet).requires_grad_(True)
    text_encoder = copy.deepcopy(base.text_encoder).requires_grad_(True)
    parts = (vae, text_encoder, base.tokenizer, unet)
    return _train_base(work, "base-resumed", recipe, parts, data, recipe.resume_steps, recipe.resume_lr, None)


def _progress_check(stage: str, parts, step: int, losses: list[float]) -> None:
    """Logged during training: how often held-out captions come out right so far (16 of them, the tiny profile's
    sampler and steps), beside the loss."""
    from tools.eval_tiny import accuracy, held_out

    pipe = training.assemble_pipeline(parts.vae, parts.text_encoder, parts.tokenizer, parts.unet)
    pipe.set_progress_bar_config(disable=True)
    right = accuracy(pipe, held_out(16))
    recent = losses[-100:]
    _log(f"{stage}: step {step}, loss {sum(recent) / len(recent):.4f}, held-out right: {right}")


def _style_data(work: Path, recipe: Recipe, vae):
    path = work / "style-latents.pt"
    if path.exists():
        return training.LatentPictures(**torch.load(path))
    _log(f"style: encoding {recipe.style_pictures} pictures")
    data = training.encode_pictures(vae, world.Sampler(seed=recipe.seed + 2, style_share=0.5), recipe.style_pictures)
    torch.save(asdict(data), path)
    return data


def _train_on_style(
    work: Path, stage: str, recipe: Recipe, base, unet, steps: int, lr: float, text_encoder=None
) -> Path:
    """Train ``unet`` (a copy of the base's, or one with a LoRA) on the style's pictures, with ``text_encoder``
    when given (else the base's, frozen); its staging folder."""
    data = _style_data(work, recipe, base.vae)
    base.text_encoder.requires_grad_(False)
    _log(f"{stage}: {steps} steps")
    staging = work / f"{stage}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    text_encoder = base.text_encoder if text_encoder is None else text_encoder
    _text_to_image(staging, unet, text_encoder, base.tokenizer, data, steps, lr, recipe, None)
    return staging


def stage_finetuned(work: Path, recipe: Recipe, base):
    from diffusers import StableDiffusionPipeline

    folder = work / "finetuned"
    if (folder / "model_index.json").exists():
        return StableDiffusionPipeline.from_pretrained(folder)
    unet = copy.deepcopy(base.unet)
    text_encoder = copy.deepcopy(base.text_encoder).requires_grad_(recipe.finetune_text_encoder)
    steps, lr = recipe.finetune_steps, recipe.finetune_lr
    staging = _train_on_style(work, "finetuned", recipe, base, unet, steps, lr, text_encoder=text_encoder)
    pipe = training.assemble_pipeline(base.vae, text_encoder, base.tokenizer, unet)
    pipe.save_pretrained(staging)
    staging.rename(folder)
    return pipe


def stage_lora(work: Path, recipe: Recipe, base) -> Path:
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = work / "lora"
    if (folder / "pytorch_lora_weights.safetensors").exists():
        return folder
    unet = copy.deepcopy(base.unet).requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=recipe.lora_rank, lora_alpha=recipe.lora_rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS
        )
    )
    staging = _train_on_style(work, "lora", recipe, base, unet, recipe.lora_steps, recipe.lora_lr)
    # peft's own key names, which load_lora_weights reads for every target. (diffusers' scripts pass the state dict
    # through convert_state_dict_to_diffusers first, which renames only the attention projections to the older
    # format: with proj_in/proj_out and the feed-forward layers also targeted, that mix loads without them.)
    StableDiffusionPipeline.save_lora_weights(staging, unet_lora_layers=get_peft_model_state_dict(unet))
    staging.rename(folder)
    return folder


CARD = """\
# {folder}: a tiny Stable Diffusion that {what}

Stable Diffusion's architecture (UNet, VAE, CLIP text encoder and tokenizer) at toy size, trained on a CPU by this
project on a world of captioned 64 x 64 pictures (`helpers/standins/world.py`): coloured balls, boxes, sailboats,
fish and cars on five backgrounds, and four named scenes (the original tutorial's prompts). Its scheduler is
`EulerDiscreteScheduler` with SD1.5's noise schedule (SD1.5 ships `PNDMScheduler`, whose multistep updates draw this
small model poorly in 10 steps). It stands in for `{stands_in_for}` where there is no GPU: the `tiny` profile loads
it with `StableDiffusionPipeline.from_pretrained`, exactly as the real model is loaded.

- Parameters: UNet {unet:,}, VAE {vae:,}, text encoder {text:,}; weights of the UNet and the VAE in half
  precision on disk (diffusers loads them as float32 unless asked otherwise).
- Data: pictures drawn on the fly from seeds; one combination of attributes in twelve is never drawn, and the
  evaluation asks for those.
- Recipe: `tools/train_tiny.py` ({recipe}); `make train-tiny` remakes it from nothing, `make eval-tiny` measures it.
{extra}
## What it learned

{evaluation}
"""


def model_card(kind: str, pipe, recipe: dict, evaluation: str = "Run `make eval-tiny`.") -> str:
    """The model card (README.md) of the shipped model ``kind``."""
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    extra = (
        "- Fine-tuned from `tiny-sd` on pictures in the `mdjrny-v4 style` (dark outlines, a violet cast, a magenta\n"
        "  frame) captioned with the trigger word, beside ordinary ones, as openjourney was fine-tuned from SD1.5.\n"
        if kind == "finetuned"
        else ""
    )
    return CARD.format(
        folder=KINDS[kind]["folder"],
        what="learned to draw a small world" if kind == "base" else "draws a small world in the mdjrny-v4 style",
        stands_in_for=KINDS[kind]["stands_in_for"],
        unet=count(pipe.unet),
        vae=count(pipe.vae),
        text=count(pipe.text_encoder),
        recipe=", ".join(f"{k} {v}" for k, v in recipe.items()),
        extra=extra,
        evaluation=evaluation,
    )


def _forget_where_loaded_from(folder: Path) -> None:
    """Drop ``_name_or_path`` (a stage's folder under --work, when a run resumed) from the saved configs."""
    for path in folder.rglob("*.json"):
        config = json.loads(path.read_text())
        if isinstance(config, dict) and config.pop("_name_or_path", None) is not None:
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_models(work: Path, out: Path, recipe: Recipe, base, finetuned, lora: Path) -> None:
    """The shipped folders: half-precision weights in the Hub's layout, model cards, the loss curves."""
    out.mkdir(parents=True, exist_ok=True)
    for name, pipe, stage in (("base", base, "base"), ("finetuned", finetuned, "finetuned")):
        target = out / KINDS[name]["folder"]
        shutil.rmtree(target, ignore_errors=True)
        half = copy.deepcopy(pipe)
        half.scheduler = training.default_scheduler()  # also for stages saved before the default changed
        # The UNet and the autoencoder in half precision (diffusers loads them back in float32 unless asked); the
        # text encoder stays float32: it is small, and transformers would load it in the dtype it was saved in.
        half.unet.to(torch.float16)
        half.vae.to(torch.float16)
        half.save_pretrained(target, safe_serialization=True)
        _forget_where_loaded_from(target)
        shutil.copy(work / stage / "losses.json", target / "losses.json")
        (target / "README.md").write_text(model_card(name, pipe, asdict(recipe)))
    target = out / LORA_FOLDER
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    from safetensors.torch import load_file, save_file

    weights = load_file(lora / "pytorch_lora_weights.safetensors")
    save_file({k: v.to(torch.float16) for k, v in weights.items()}, target / "pytorch_lora_weights.safetensors")
    shutil.copy(lora / "losses.json", target / "losses.json")
    base_folder = out / KINDS["base"]["folder"]
    shutil.copy(work / "autoencoder" / "losses.json", base_folder / "vae" / "losses.json")
    shutil.copy(work / "autoencoder-refined" / "losses.json", base_folder / "vae" / "losses-refined.json")
    shutil.copy(work / "base-resumed" / "losses.json", base_folder / "losses-resumed.json")
    (target / "README.md").write_text(
        f"# tiny-mdjrny-lora\n\nA LoRA (rank {recipe.lora_rank}) of the `mdjrny-v4 style` for `tiny-sd`, trained "
        "with peft as diffusers' LoRA training script trains one; load it with `pipe.load_lora_weights(...)`. "
        "Recipe: `tools/train_tiny.py`.\n"
    )
    (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")


def write_timing(out: Path, minutes: float, *, resumed: bool) -> None:
    """How long the run took, and where: ``training.json`` beside the models, quoted by ``make eval-tiny``'s report."""
    from tools.envinfo import cpu_name

    timing = {
        "minutes": round(minutes, 1),
        "resumed": resumed,  # True: some stages were already done, so this is not the time from nothing
        "machine": f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / "training.json").write_text(json.dumps(timing, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.train_tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/train-tiny"), help="where stages are saved")
    parser.add_argument("--out", type=Path, default=models_root(), help="where the shipped models are written")
    parser.add_argument("--fresh", action="store_true", help="start from nothing, throwing away --work")
    parser.add_argument("--quick", action="store_true", help="a few steps of each stage (checks the recipe runs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="PyTorch threads (default: all)")
    args = parser.parse_args(argv)
    recipe = Recipe()
    if args.quick:
        recipe = Recipe(
            autoencoder_steps=3, base_pictures=64, base_steps=3, base_batch=8, refine_steps=2, resume_steps=2,
            style_pictures=32, finetune_steps=2, lora_steps=2,
        )  # fmt: skip
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    resumed = any(args.work.iterdir())
    start = time.perf_counter()
    vae = stage_autoencoder(args.work, recipe)
    base = stage_base(args.work, recipe, vae)
    vae = stage_refined_autoencoder(args.work, recipe, vae)
    base = stage_resumed_base(args.work, recipe, base, vae)
    finetuned = stage_finetuned(args.work, recipe, base)
    lora = stage_lora(args.work, recipe, base)
    write_models(args.work, args.out, recipe, base, finetuned, lora)
    minutes = (time.perf_counter() - start) / 60
    write_timing(args.out, minutes, resumed=resumed)
    _log(f"done in {minutes:.1f} min; the models are in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
