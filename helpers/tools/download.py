"""Fetch the real models once, so that a classroom can work offline.

It downloads exactly the files that :func:`helpers.load_pipeline` will read (the fp16 safetensors on a GPU
profile) into the Hugging Face cache. Share that cache with a class by copying it, or by pointing every machine
at one folder with ``HF_HOME=/shared/hf`` before starting Jupyter; set ``HF_HUB_OFFLINE=1`` there too.

Example (on a machine with internet):
    $ make download                       # the GPU profile's base and fine-tuned models
    $ python -m helpers.tools.download --profile mps stable-diffusion-v1-5/stable-diffusion-v1-5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..loading import ModelNotAvailableError, fetch, load_kwargs, resolve_model
from ..profiles import PROFILES, resolve_profile


def download(model_ids: Sequence[str] | None = None, profile: str = "gpu") -> dict[str, str]:
    """Download the pipelines ``model_ids`` (default: the profile's base and fine-tuned models).

    Returns a mapping from model id to the local folder that holds it.
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
        kwargs = load_kwargs(prof, kind, where, prof.dtype)
        kwargs.pop("dtype")  # a download keeps the files as they are
        folders[model_id] = str(fetch(StableDiffusionPipeline.download, where, kind, kwargs))
    return folders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.tools.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="Hub ids (default: the profile's base and fine-tuned models)")
    real = [name for name, p in PROFILES.items() if p.real_weights]
    parser.add_argument("--profile", default="gpu", choices=real, help="which files to fetch (default: gpu, fp16)")
    args = parser.parse_args(argv)
    try:
        folders = download(args.models, args.profile)
    except (ModelNotAvailableError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for model_id, folder in folders.items():
        print(f"{model_id}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
