"""The user's code, run as a separate process against whatever HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE say.

``python tests/hub_client.py STEP [STEP ...]`` runs the steps in order and prints one JSON line per step
(``{"step": ..., ...}``); without arguments it reads one step name per line from stdin and answers each, so that
a test can stop, crash and restart the server between steps of one process (importing torch and diffusers
takes seconds). tests/test_hub_user_path.py runs it in a separate process because huggingface_hub and diffusers
read those variables when first imported, and the test process imported them offline.
"""

import contextlib
import hashlib
import io
import json
import sys
from pathlib import Path

import torch

from helpers import activate_profile, from_pretrained_call, load_pipeline
from helpers.loading import ModelNotAvailableError, NoSafetensorsError
from helpers.lora import style_lora
from tools import download
from tools.local_hub import PICKLE_ONLY_ID


def _captured(func, *args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = func(*args)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def _describe(pipe) -> dict:
    return {
        "class": type(pipe).__name__,
        "dtype": str(pipe.dtype),
        "unet_dtype": str(pipe.unet.dtype),
        "safety_checker": type(pipe.safety_checker).__name__,
    }


def step_download():
    return _captured(download.main, [])


def step_check():
    return _captured(download.main, ["--check"])


def step_load_gpu():
    """load_pipeline with the gpu profile's from_pretrained arguments, on the CPU."""
    prof = activate_profile("gpu")
    pipe = load_pipeline(device="cpu")
    return {**_describe(pipe), "call": from_pretrained_call(profile=prof)}


def step_generate():
    """The gpu profile's pipeline, on the CPU, makes one small picture (safety checker included)."""
    pipe = load_pipeline(profile="gpu", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a cat", num_inference_steps=2, height=64, width=64).images[0]
    return {"image_size": list(image.size), "safety_checked": pipe.safety_checker is not None}


def step_load_finetuned():
    """Notebook 06's path: the profile's fine-tuned model (openjourney has no fp16 files)."""
    prof = activate_profile("gpu")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        pipe = load_pipeline(prof.finetuned_model, device="cpu")
    return {**_describe(pipe), "out": out.getvalue()}


def step_load_lora():
    """Notebook 06's LoRA, by the gpu profile's Hub id, into its base model (on the CPU): weighed, then unloaded."""
    from huggingface_hub.constants import HF_HUB_CACHE

    prof = activate_profile("gpu")
    lora = style_lora(prof)
    pipe = load_pipeline(device="cpu")
    pipe.set_progress_bar_config(disable=True)

    def picture():
        generator = torch.Generator("cpu").manual_seed(0)
        kwargs = {"num_inference_steps": 2, "height": 64, "width": 64, "output_type": "np"}
        return pipe(prompt="a red circle, mdjrny-v4 style", generator=generator, **kwargs).images[0]

    before = picture()
    pipe.load_lora_weights(lora.repo, weight_name=lora.weight_name, adapter_name="mdjrny")
    adapters = pipe.get_list_adapters()
    full = picture()
    pipe.set_adapters(["mdjrny"], adapter_weights=[0.0])
    zero = picture()
    pipe.set_adapters(["mdjrny"], adapter_weights=[1.0])  # at full weight again: unloading must take it out
    pipe.unload_lora_weights()
    after = picture()
    repo = Path(HF_HUB_CACHE) / f"models--{lora.repo.replace('/', '--')}"
    return {
        "lora": list(lora),
        "cached": sorted(str(f.relative_to(snap)) for snap in repo.glob("snapshots/*") for f in snap.rglob("*")),
        "adapters": adapters,
        "lora_changes_levels": float(abs(full - before).max() * 255),
        "weight_0_is_base": bool((zero == before).all()),
        "unloaded_is_base": bool((after == before).all()),
        "adapters_after_unload": pipe.get_list_adapters(),
    }


def step_pickle_only():
    try:
        load_pipeline(PICKLE_ONLY_ID, profile="gpu", device="cpu")
    except NoSafetensorsError as err:
        return {"error": type(err).__name__, "message": str(err)}
    return {"error": None}


def step_cache_state():
    """What is in the cache: every snapshot file with its sha256, and interrupted downloads."""
    from huggingface_hub.constants import HF_HUB_CACHE

    root = Path(HF_HUB_CACHE)
    snapshot_files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.glob("models--*/snapshots/*/**/*")
        if p.is_file()
    }
    return {"files": snapshot_files, "incomplete": sorted(str(p.relative_to(root)) for p in root.rglob("*.incomplete"))}


def step_load_missing():
    try:
        load_pipeline(profile="gpu", device="cpu")
    except ModelNotAvailableError as err:
        return {"error": type(err).__name__, "message": str(err)}
    return {"error": None}


STEPS = {name.removeprefix("step_"): func for name, func in globals().items() if name.startswith("step_")}

if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in sys.argv[1:] or (line.strip() for line in sys.stdin):
        print(json.dumps({"step": name, **STEPS[name]()}), flush=True)
