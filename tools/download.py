"""Fetch the real models once, so that a classroom can work offline.

It downloads exactly the files that :func:`helpers.load_pipeline` will read (the fp16 safetensors on a GPU
profile) into the Hugging Face cache, and the one file of the LoRA that lesson 06 loads
(:func:`helpers.lora.style_lora`). Share that cache with a class by copying it, or by pointing every machine at
one folder with ``HF_HOME=/shared/hf`` before starting Jupyter; set ``HF_HUB_OFFLINE=1`` there too.

``--check`` (``make download CHECK=1``) reads only the cache: it verifies that every file ``from_pretrained``
needs is there and whole (safetensors headers match the file sizes, no interrupted download), and names
``make download`` for whatever is missing.

Example (on a machine with internet, or with ``HF_ENDPOINT`` set to a mirror such as ``make hub``):
    $ make download                       # the GPU profile's base and fine-tuned models
    $ make download CHECK=1               # offline: is everything in the cache?
    $ python -m tools.download --profile mps stable-diffusion-v1-5/stable-diffusion-v1-5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from helpers.loading import ModelNotAvailableError, fetch, load_kwargs, resolve_model
from helpers.lora import style_lora
from helpers.profiles import PROFILES, resolve_profile


def download(model_ids: Sequence[str] | None = None, profile: str = "gpu") -> dict[str, str]:
    """Download the pipelines ``model_ids`` (default: the profile's base and fine-tuned models, and its LoRA).

    Returns a mapping from model id to the local folder (or, for the LoRA, the file) that holds it.
    """
    prof = resolve_profile(profile)
    if not prof.real_weights:
        raise ValueError(
            f"profile={profile!r} uses the tiny test model, which is built locally and needs no download; "
            f"use profile='gpu', 'mps' or 'cpu'"
        )
    from diffusers import StableDiffusionPipeline

    folders = {}
    for model_id in model_ids or (prof.base_model, prof.finetuned_model):
        where, kind = resolve_model(model_id, prof)
        if kind != "hub":  # a local folder is already here
            folders[model_id] = where
            continue
        kwargs = load_kwargs(kind, where, prof.dtype)
        kwargs.pop("dtype")  # a download keeps the files as they are
        folders[model_id] = str(fetch(StableDiffusionPipeline.download, where, kind, kwargs))
    if not model_ids:
        from huggingface_hub import hf_hub_download

        lora = style_lora(prof)
        folders[lora.repo] = str(fetch(hf_hub_download, lora.repo, "hub", {"filename": lora.weight_name}))
    return folders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="Hub ids (default: the profile's base and fine-tuned models)")
    real = [name for name, p in PROFILES.items() if p.real_weights]
    parser.add_argument("--profile", default="gpu", choices=real, help="which files to fetch (default: gpu, fp16)")
    parser.add_argument("--check", action="store_true", help="only verify the cache, offline; exit 1 if incomplete")
    args = parser.parse_args(argv)
    if args.check:
        return main_check(args)
    try:
        folders = download(args.models, args.profile)
    except (ModelNotAvailableError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for model_id, folder in folders.items():
        print(f"{model_id}: {folder}")
    return 0


# Which file says what a pipeline component is; a component with config.json is a model and needs weights.
COMPONENT_FILES = ("config.json", "scheduler_config.json", "tokenizer_config.json", "preprocessor_config.json")


def _cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id``'s main branch, looking only at the cache (None if absent)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return Path(found).parent if isinstance(found, str) else None


def _intact(weights: Path) -> str | None:
    """None if ``weights`` is a whole safetensors file, else what is wrong with it."""
    from safetensors import safe_open

    try:
        with safe_open(weights, "pt") as f:
            return None if list(f.keys()) else "holds no tensors"
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types, and OSError
        return f"is damaged ({err})"


def _component_problems(folder: Path, variant: str | None) -> list[str]:
    if not folder.is_dir():
        return ["is missing"]
    if not any((folder / name).exists() for name in COMPONENT_FILES):
        return [f"has none of {', '.join(COMPONENT_FILES)}"]
    if folder.name == "tokenizer" and not (
        (folder / "tokenizer.json").exists() or {"vocab.json", "merges.txt"} <= {p.name for p in folder.iterdir()}
    ):
        return ["has no vocabulary (tokenizer.json, or vocab.json and merges.txt)"]
    if not (folder / "config.json").exists():
        return []
    weights = sorted(folder.glob(f"*.{variant}.safetensors")) if variant else []
    # Without the variant's files, from_pretrained falls back to the full-precision ones.
    weights = weights or [w for w in sorted(folder.glob("*.safetensors")) if w.name.count(".") == 1]
    if not weights:
        wanted = f"*.{variant}.safetensors or *.safetensors" if variant else "*.safetensors"
        return [f"has no weights ({wanted})"]
    return [f"{w.name} {problem}" for w in weights if (problem := _intact(w))]


def check(model_ids: Sequence[str] | None = None, profile: str = "gpu") -> dict[str, list[str]]:
    """Verify, from the cache alone, that ``load_pipeline`` will find every file of ``model_ids`` (default: the
    profile's base and fine-tuned models, and lesson 06's LoRA).

    Returns ``{model_id: problems}``: an empty list means complete. Never touches the network.
    """
    prof = resolve_profile(profile)
    report = {}
    for model_id in model_ids or (prof.base_model, prof.finetuned_model):
        where, kind = resolve_model(model_id, prof)
        if kind != "hub":
            report[model_id] = []
            continue
        snapshot = _cached_snapshot(where)
        if snapshot is None:
            report[model_id] = ["is not in the Hugging Face cache"]
            continue
        problems = []
        repo_cache = snapshot.parent.parent
        if any((repo_cache / "blobs").glob("*.incomplete")):
            problems.append("has an interrupted download (*.incomplete files)")
        variant = load_kwargs(kind, where, prof.dtype).get("variant")
        index = json.loads((snapshot / "model_index.json").read_text())
        for name, spec in sorted(index.items()):
            if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
                continue  # bookkeeping, or a component the pipeline does without
            problems += [f"{name}/ {problem}" for problem in _component_problems(snapshot / name, variant)]
        report[model_id] = problems
    if not model_ids:
        from huggingface_hub import try_to_load_from_cache

        lora = style_lora(prof)
        found = try_to_load_from_cache(lora.repo, lora.weight_name)
        problem = _intact(Path(found)) if isinstance(found, str) else "is not in the Hugging Face cache"
        report[lora.repo] = [f"{lora.weight_name} {problem}"] if problem else []
    return report


def main_check(args: argparse.Namespace) -> int:
    from huggingface_hub.constants import HF_HUB_CACHE

    report = check(args.models, args.profile)
    for model_id, problems in report.items():
        if not problems:
            print(f"ok: {model_id}")
        for problem in problems:
            print(f"missing: {model_id}: {problem}", file=sys.stderr)
    bad = [model_id for model_id, problems in report.items() if problems]
    if bad:
        print(
            f"error: {len(bad)} model(s) incomplete in the cache ({HF_HUB_CACHE}): {', '.join(bad)}. Run "
            f"`make download` where there is internet (or with HF_ENDPOINT set to a mirror), then check again.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
