"""``make eval-tiny``: what the shipped tiny models learned, judged from their pictures' pixels.

Every figure comes from pictures the models draw for captions of the world (:mod:`helpers.standins.world`), judged
with the world's own knowledge (:func:`helpers.standins.world.judge`): its palette, its backgrounds, where it puts
things. The captions are the held-out combinations, which no training picture showed. It writes ``eval.json``, a
grid of samples and ``README.md`` into ``docs/reports/tiny-model/``; the tests in ``tests/standins`` use the same
functions on fewer pictures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from helpers.profiles import PROFILES
from helpers.standins import world
from helpers.tables import markdown_table
from tools import ROOT

REPORT = ROOT / "docs" / "reports" / "tiny-model"
TINY = PROFILES["tiny"]
GUIDANCES = (1.0, 3.0, 7.5)
AIMS = {"colour": 0.90, "position": 0.90, "background": 0.95, "style_with_trigger": 0.90, "style_without": 0.10}


def generate(pipe, prompts: list[str], seeds: list[int], negative: str | list[str] | None = None, **settings):
    """One picture per prompt, each from its own seed's CPU generator (the lessons' settings unless given)."""
    settings = {"num_inference_steps": TINY.num_inference_steps, "guidance_scale": 7.5} | settings
    if isinstance(negative, str):
        negative = [negative] * len(prompts)
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt=prompts, negative_prompt=negative, generator=generators, **settings).images


def held_out(n: int | None = None) -> list[world.Thing]:
    """The held-out combinations in a fixed order (the first ``n`` of them)."""
    things = sorted(world.HELD_OUT, key=lambda t: t.caption())
    return things[:n] if n else things


def _shares(found: list[world.Judgement], things: list[world.Thing]) -> dict[str, float]:
    """The share of judgements whose colour, position and background are the thing's (and all three at once)."""
    right = {
        "colour": [f.colour == t.colour for f, t in zip(found, things, strict=True)],
        "position": [f.position == t.position for f, t in zip(found, things, strict=True)],
        "background": [f.background == t.background for f, t in zip(found, things, strict=True)],
    }
    right["all"] = [all(r) for r in zip(*right.values(), strict=True)]
    return {k: float(np.mean(v)) for k, v in right.items()}


def accuracy(pipe, things: list[world.Thing], seed: int = 0, **settings) -> dict[str, float]:
    """The share of pictures whose colour, position and background are the caption's (and all three at once)."""
    pictures = generate(pipe, [t.caption() for t in things], [seed + i for i in range(len(things))], **settings)
    found = [world.judge(p) for p in pictures]
    return _shares(found, things)


def style_rate(pipe, things: list[world.Thing], trigger: bool, seed: int = 0, **settings) -> float:
    """The share of pictures in the ``mdjrny-v4 style`` when the caption does (or does not) carry the trigger."""
    prompts = [replace(t, styled=trigger).caption() for t in things]
    pictures = generate(pipe, prompts, [seed + i for i in range(len(things))], **settings)
    return float(np.mean([world.judge(p).styled for p in pictures]))


def negative_effect(pipe, colour: str, n: int = 16, seed: int = 0, **settings) -> dict[str, float]:
    """How much of ``colour`` there is in pictures whose caption names no colour, without and with it as a
    negative prompt (the share of its pixels, and of pictures whose object has it)."""
    things = [t for t in held_out() if (colour, t.background) not in world.CLASHES][:n]
    prompts = [replace(t, colour=None).caption() for t in things]
    seeds = [seed + i for i in range(len(things))]
    result = {}
    for label, negative in (("without", None), ("with", colour)):
        pictures = generate(pipe, prompts, seeds, negative=negative, **settings)
        result[f"pixels_{label}"] = float(np.mean([world.colour_share(p, colour) for p in pictures]))
        result[f"pictures_{label}"] = float(np.mean([world.judge(p).colour == colour for p in pictures]))
    return result


@torch.no_grad()
def round_trip(vae, things: list[world.Thing], styled: bool = False, seed: int = 0) -> dict[str, float]:
    """The world's own pictures of ``things`` through the autoencoder and back, judged as the models' pictures are:
    the most any model can get right through this autoencoder (its ceiling), with ``style_kept`` for styled ones."""
    from helpers.training import to_tensor

    drawn = [world.draw(replace(t, styled=styled), seed=seed + i) for i, t in enumerate(things)]
    pixels = to_tensor(drawn).to(vae.device, vae.dtype)
    rebuilt = vae.decode(vae.encode(pixels).latent_dist.mean).sample.float().clamp(-1, 1)
    arrays = ((rebuilt + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    found = [world.judge(Image.fromarray(a)) for a in arrays]
    return _shares(found, things) | {"style_kept": float(np.mean([f.styled == styled for f in found]))}


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference, from 0 (the same) to 1."""
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() / 255)


def _scene_of(found: world.Judgement) -> tuple:
    return found.colour, found.position, found.background


@contextmanager
def swapped_scheduler(pipe, scheduler_class):
    """``pipe`` with another scheduler made from its own config (the lessons' swap), put back afterwards."""
    original = pipe.scheduler
    pipe.scheduler = scheduler_class.from_config(original.config)
    try:
        yield pipe
    finally:
        pipe.scheduler = original


SAMPLERS = (("EulerDiscreteScheduler", 10), ("EulerDiscreteScheduler", 20), ("PNDMScheduler", 10),
            ("PNDMScheduler", 30), ("DPMSolverMultistepScheduler", 5), ("DPMSolverMultistepScheduler", 10),
            ("DPMSolverMultistepScheduler", 20))  # fmt: skip


def accuracy_by_sampler(pipe, things: list[world.Thing]) -> dict[str, dict[str, float]]:
    """:func:`accuracy` at guidance 7.5 with the tiny model's Euler, SD1.5's PNDM and DPM-Solver++, at several step
    counts."""
    import diffusers

    result = {}
    for name, steps in SAMPLERS:
        with swapped_scheduler(pipe, getattr(diffusers, name)):
            result[f"{name}, {steps} steps"] = accuracy(pipe, things, num_inference_steps=steps)
    return result


def scheduler_agreement(
    pipe, things: list[world.Thing], seed: int = 0, slow_steps: int | None = None, fast_steps: int | None = None
) -> dict[str, float]:
    """DPM-Solver++ at the fast step count against ``pipe``'s own scheduler at the full one, seed for seed; the step
    counts are the tiny profile's unless given."""
    from diffusers import DPMSolverMultistepScheduler

    prompts, seeds = [t.caption() for t in things], [seed + i for i in range(len(things))]
    slow = generate(pipe, prompts, seeds, num_inference_steps=slow_steps or TINY.num_inference_steps)
    with swapped_scheduler(pipe, DPMSolverMultistepScheduler):
        fast = generate(pipe, prompts, seeds, num_inference_steps=fast_steps or TINY.fast_steps)
    same = [_scene_of(world.judge(a)) == _scene_of(world.judge(b)) for a, b in zip(slow, fast, strict=True)]
    return {
        "same_scene": float(np.mean(same)),
        "pixel_difference": float(np.mean([difference(a, b) for a, b in zip(slow, fast, strict=True)])),
    }


def seed_spread(pipe, prompt: str, seeds=range(8), **settings) -> dict[str, float]:
    """How different the pictures of several seeds are: the smallest and the mean pairwise difference."""
    pictures = generate(pipe, [prompt] * len(seeds), list(seeds), **settings)
    pairs = [difference(a, b) for a, b in combinations(pictures, 2)]
    return {"min_pair_difference": float(min(pairs)), "mean_pair_difference": float(np.mean(pairs))}


def scene_means(n: int = 24) -> dict[str, np.ndarray]:
    """The average picture of each named scene, and of things, as the world draws them."""
    means = {
        name: np.mean([np.asarray(world.draw(world.Scene(name), seed), float) for seed in range(n)], axis=0)
        for name in world.SCENES
    }
    sampler = world.Sampler(seed=5, scene_share=0.0)
    means["thing"] = np.mean([np.asarray(sampler.example()[0], float) for _ in range(n * 4)], axis=0)
    return means


def nearest_scene(picture: Image.Image, means: dict[str, np.ndarray]) -> str:
    pixels = np.asarray(picture.convert("RGB"), float)
    return min(means, key=lambda name: float(np.abs(pixels - means[name]).mean()))


def scene_recognition(pipe, n: int = 8, seed: int = 0, **settings) -> dict[str, float]:
    """For each named scene's prompt, the share of ``n`` pictures nearer that scene's average than any other."""
    means = scene_means()
    result = {}
    for name, prompt in world.SCENES.items():
        pictures = generate(pipe, [prompt] * n, [seed + i for i in range(n)], **settings)
        result[name] = float(np.mean([nearest_scene(p, means) == name for p in pictures]))
    return result


def sample_grid(base, finetuned, columns: int = 8) -> Image.Image:
    """Rows: held-out captions, the four scenes, and the fine-tuned model with and without its trigger word."""
    from helpers.grid import labelled_grid

    things = held_out(columns)
    rows = {
        "held-out captions": generate(base, [t.caption() for t in things], list(range(columns))),
        **{
            f'"{world.SCENES[name][:28]}"': generate(base, [prompt] * columns, list(range(columns)))
            for name, prompt in world.SCENES.items()
        },
        "fine-tuned, trigger": generate(
            finetuned, [replace(t, styled=True).caption() for t in things], list(range(columns))
        ),
        "fine-tuned, no trigger": generate(finetuned, [t.caption() for t in things], list(range(columns))),
    }
    pictures = [p for row in rows.values() for p in row]
    labels = [name if i == 0 else f"seed {i}" for name in rows for i in range(columns)]
    return labelled_grid(pictures, labels, rows=len(rows), cols=columns, min_width=160)


def evaluate(base, finetuned, lora: Path | None = None) -> dict:
    """Every figure of the report (about a minute on two CPU cores)."""
    things = held_out()
    report: dict = {"held_out_captions": len(things), "settings": {
        "scheduler": type(base.scheduler).__name__, "num_inference_steps": TINY.num_inference_steps,
        "size": f"{TINY.width}x{TINY.height}", "fast_scheduler": "DPMSolverMultistepScheduler",
        "fast_steps": TINY.fast_steps}}  # fmt: skip
    report["autoencoder"] = {"plain": round_trip(base.vae, things), "styled": round_trip(base.vae, things, styled=True)}
    report["accuracy_by_guidance"] = {str(g): accuracy(base, things, guidance_scale=g) for g in GUIDANCES}
    report["accuracy_by_sampler"] = accuracy_by_sampler(base, things)
    report["style"] = {
        "finetuned_with_trigger": style_rate(finetuned, things, trigger=True),
        "finetuned_without_trigger": style_rate(finetuned, things, trigger=False),
        "base_with_trigger": style_rate(base, things, trigger=True),
    }
    if lora is not None:
        base.load_lora_weights(lora, adapter_name="style")
        try:
            report["style"]["lora_with_trigger"] = style_rate(base, things, trigger=True)
            report["style"]["lora_without_trigger"] = style_rate(base, things, trigger=False)
        finally:
            base.unload_lora_weights()
    report["negative_prompt"] = {c: negative_effect(base, c) for c in world.COLOURS}
    report["schedulers"] = scheduler_agreement(base, things[:32])
    report["seeds"] = {prompt: seed_spread(base, prompt) for prompt in world.SCENES.values()}
    report["scenes"] = scene_recognition(base)
    best = report["accuracy_by_guidance"]["7.5"]
    report["aims"] = {
        "colour": best["colour"] >= AIMS["colour"],
        "position": best["position"] >= AIMS["position"],
        "background": best["background"] >= AIMS["background"],
        "style_with_trigger": report["style"]["finetuned_with_trigger"] >= AIMS["style_with_trigger"],
        "style_without_trigger": report["style"]["finetuned_without_trigger"] <= AIMS["style_without"],
        "rises_with_guidance": report["accuracy_by_guidance"]["1.0"]["all"] < best["all"],
    }
    return report


NEGATIVE_FORMATS = {
    "pictures_without": "{:.0%}",
    "pictures_with": "{:.0%}",
    "pixels_without": "{:.1%}",
    "pixels_with": "{:.1%}",
}


def _cells(values: dict, formats: dict[str, str]) -> list[str]:
    """A table row's cells: each value of ``formats``' keys, formatted as it says."""
    return [form.format(values[key]) for key, form in formats.items()]


def _accuracy_table(rows: dict[str, dict[str, float]], first: str) -> str:
    """A table of :func:`accuracy` results, one row per setting named in the column ``first``."""
    shares = dict.fromkeys(("colour", "position", "background", "all"), "{:.0%}")
    return markdown_table(
        [[name, *_cells(v, shares)] for name, v in rows.items()],
        [first, "colour", "position", "background", "all three"],
    )


def markdown(report: dict) -> str:
    """The report as the page docs/reports/tiny-model/README.md."""
    lines = [
        "# What the tiny models learned",
        "",
        f"Written by `make eval-tiny` on {report['date']} ({report['machine']}). Every figure is judged from the "
        "pixels of pictures drawn for captions no training picture showed (`tools/eval_tiny.py`).",
        "",
        "![samples](grid.png)",
        "",
        "## Attributes of held-out captions, by guidance",
        "",
        _accuracy_table(report["accuracy_by_guidance"], "guidance"),
        "",
        "## The autoencoder's round trip",
        "",
        "The world's own pictures of the held-out captions, encoded and decoded by the autoencoder, judged the same",
        "way: what any model drawing through this autoencoder can get right at most.",
        "",
        _accuracy_table(report["autoencoder"], "pictures"),
        "",
        "The style survives the round trip in "
        f"{report['autoencoder']['styled']['style_kept']:.0%} of styled pictures "
        f"(and appears in {1 - report['autoencoder']['plain']['style_kept']:.0%} of plain ones).",
        "",
        "## Attributes of held-out captions, by scheduler and steps (guidance 7.5)",
        "",
        _accuracy_table(report["accuracy_by_sampler"], "scheduler"),
        "",
        "## The style of the fine-tuned model",
        "",
        markdown_table([[k.replace("_", " "), f"{v:.0%}"] for k, v in report["style"].items()], ["model", "styled"]),
        "",
        "## A negative prompt naming a colour (captions that name none)",
        "",
        markdown_table(
            [[c, *_cells(v, NEGATIVE_FORMATS)] for c, v in report["negative_prompt"].items()],
            ["colour", "pictures of it, no negative", "with it as negative", "its pixels, no negative", "with"],
        ),
        "",
        "## Schedulers, seeds and scenes",
        "",
        f"DPM-Solver++ at {report['settings']['fast_steps']} steps against the model's own "
        f"{report['settings']['scheduler']} at {report['settings']['num_inference_steps']}: the same colour, position "
        "and background in "
        f"{report['schedulers']['same_scene']:.0%} of pictures; mean pixel difference "
        f"{report['schedulers']['pixel_difference']:.1%}.",
        "",
        markdown_table(
            [
                [p, f"{v['min_pair_difference']:.1%}", f"{v['mean_pair_difference']:.1%}", f"{report['scenes'][n]:.0%}"]
                for (n, p), v in zip(world.SCENES.items(), report["seeds"].values(), strict=True)
            ],
            ["prompt", "seeds 0-7: least different pair", "mean difference", "recognised as its scene"],
        ),  # fmt: skip
        "",
        "## Aims",
        "",
        markdown_table(
            [[k.replace("_", " "), "met" if v else "NOT met"] for k, v in report["aims"].items()], ["aim", ""]
        ),  # fmt: skip
        "",
    ]
    training = report.get("training")
    if training:
        lines += ["## Training", "", training_text(training), ""]
    return "\n".join(lines)


# Each stage of make train-tiny, in order, and where its loss curve is kept beside the shipped models.
STAGES = {
    "autoencoder": ("tiny-sd", "vae", "losses.json"),
    "base": ("tiny-sd", "losses.json"),
    "autoencoder-refined": ("tiny-sd", "vae", "losses-refined.json"),
    "base-resumed": ("tiny-sd", "losses-resumed.json"),
    "finetuned": ("tiny-openjourney", "losses.json"),
    "lora": ("tiny-mdjrny-lora", "losses.json"),
}


def training_summary(models: Path) -> dict:
    """How the models were trained: the recipe, each stage's minutes and last loss, the whole run's time."""
    summary = {"recipe": json.loads((models / "recipe.json").read_text()), "stages": {}}
    for stage, parts in STAGES.items():
        record = json.loads(models.joinpath(*parts).read_text())
        tail = record["losses"][-50:]
        summary["stages"][stage] = {"minutes": round(record["seconds"] / 60, 1), "final_loss": sum(tail) / len(tail)}
    timing = models / "training.json"
    summary["run"] = json.loads(timing.read_text()) if timing.exists() else None
    return summary


def training_text(training: dict) -> str:
    """The report's training section: the whole run's time and where, then a table of the stages."""
    run = training["run"]
    head = (
        f"`make train-tiny` made these models in {run['minutes']} minutes on {run['date']} ({run['machine']})"
        + (", resuming stages already done." if run["resumed"] else ", from nothing.")
        if run
        else "The run's total time was not recorded."
    )
    rows = [[stage, f"{v['minutes']}", f"{v['final_loss']:.4f}"] for stage, v in training["stages"].items()]
    return (
        head
        + " Its recipe: `tools/train_tiny.py`.\n\n"
        + markdown_table(rows, ["stage", "minutes of training (encoding apart)", "loss, last 50 steps"])
    )


LEARNED = "## What it learned\n"


def learned_text(kind: str, report: dict) -> str:
    """The model card's section "What it learned": the report's figures for this model."""
    at = report["accuracy_by_guidance"]
    best, off = at["7.5"], at["1.0"]
    style = report["style"]
    lines = [
        f"Measured by `make eval-tiny` on {report['date']}, from the pixels of pictures drawn for "
        f"{report['held_out_captions']} captions no training picture showed ({report['settings']['scheduler']}, "
        f"{report['settings']['num_inference_steps']} steps, {report['settings']['size']}):",
        "",
    ]
    if kind == "base":
        lines += [
            f"- at guidance 7.5 the object's colour is right in {best['colour']:.0%}, its position in "
            f"{best['position']:.0%}, the background in {best['background']:.0%} (all three: {best['all']:.0%}; "
            f"at guidance 1: {off['all']:.0%});",
            "- with DPM-Solver++ in 10 steps: colour {colour:.0%}, position {position:.0%}, background "
            "{background:.0%};".format(**report["accuracy_by_sampler"]["DPMSolverMultistepScheduler, 10 steps"]),
            f"- DPM-Solver++ in {report['settings']['fast_steps']} steps draws the same scene as "
            f"{report['settings']['scheduler']} in {report['settings']['num_inference_steps']} in "
            f"{report['schedulers']['same_scene']:.0%} of pictures;",
            f"- the trigger word alone gives it the style in {style['base_with_trigger']:.0%} of pictures.",
        ]
        if "autoencoder" in report:
            lines[-1] = lines[-1][:-1] + ";"
            lines.append(
                "- its autoencoder's round trip of the world's own pictures keeps the object's colour in "
                f"{report['autoencoder']['plain']['colour']:.0%} (the most a model drawing through it can get right)."
            )
    else:
        lines += [
            f"- the style shows in {style['finetuned_with_trigger']:.0%} of pictures with the trigger word and in "
            f"{style['finetuned_without_trigger']:.0%} without it.",
        ]
    lines += ["", "![samples](samples.png)", "", "The whole report: `docs/reports/tiny-model/README.md`.", ""]
    return "\n".join(lines)


def update_model_cards(models: Path, report: dict, grid: Path) -> None:
    """Write the figures and the grid of samples into the shipped models' cards (their section "What it learned")."""
    from helpers.standins.tiny import KINDS

    for kind in ("base", "finetuned"):
        folder = models / KINDS[kind]["folder"]
        card = (folder / "README.md").read_text()
        head = card.split(LEARNED, 1)[0]
        (folder / "README.md").write_text(f"{head}{LEARNED}\n{learned_text(kind, report)}")
        Image.open(grid).save(folder / "samples.png", optimize=True)


def main(argv: list[str] | None = None) -> int:
    from diffusers import StableDiffusionPipeline

    from helpers.standins.tiny import KINDS, LORA_FOLDER, models_root
    from tools.envinfo import cpu_name

    parser = argparse.ArgumentParser(prog="python -m tools.eval_tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=models_root(), help="the folder of the tiny models")
    parser.add_argument("--out", type=Path, default=REPORT, help="where eval.json, grid.png and README.md go")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load = {"dtype": torch.float32}
    base = StableDiffusionPipeline.from_pretrained(args.models / KINDS["base"]["folder"], **load)
    finetuned = StableDiffusionPipeline.from_pretrained(args.models / KINDS["finetuned"]["folder"], **load)
    report = evaluate(base, finetuned, args.models / LORA_FOLDER)
    report["date"] = time.strftime("%Y-%m-%d")
    report["machine"] = f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["training"] = training_summary(args.models)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    sample_grid(base, finetuned).save(args.out / "grid.png")
    (args.out / "README.md").write_text(markdown(report))
    update_model_cards(args.models, report, args.out / "grid.png")
    print(markdown(report))
    return 0 if all(report["aims"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
