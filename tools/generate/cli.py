"""Make a class's or a dataset's worth of images: every prompt of a file at every seed, on one or many GPUs.

Under ``accelerate launch`` each process loads the model once and makes its share of the batches
(``PartialState().split_between_processes``); the main process writes the manifest and the gallery once all
have finished. A rerun into the same ``--out`` makes only what is missing, and never rewrites an image.
The exit code is 2 for bad input (found before any work), 1 when generation failed.

Usage:
    python -m tools.generate --prompts prompts.txt --seeds 0-7 --out gallery
    accelerate launch --num_processes 2 -m tools.generate --prompts class.csv --seeds 0-3
    accelerate launch --cpu --num_processes 2 -m tools.generate --prompts p.jsonl --profile tiny
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from helpers.checks import check_count, check_number
from helpers.inputs import generation_settings
from helpers.loading import ModelNotAvailableError, NoSafetensorsError, resolve_model
from helpers.profiles import TINY_BANNER, Profile, activate_profile
from helpers.schedulers import list_schedulers

from .plan import IMAGES, INCOMPLETE, Item, Settings, batches, build_items, pending
from .prompts import InputError, parse_seeds, read_prompts
from .report import GALLERY, MANIFEST, SUMMARY, write_reports

ENVIRONMENT = "environment.json"
# What this tool writes into --out; a folder holding anything else is someone else's and is refused.
OWN_NAMES = {IMAGES, INCOMPLETE, MANIFEST, SUMMARY, GALLERY, ENVIRONMENT}
DEFAULT_GUIDANCE = 7.5  # StableDiffusionPipeline's default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.generate",
        description=__doc__.split("\n\n")[0],
        epilog="docs/tools.md: 'Many pictures on many GPUs'.",
    )
    what = parser.add_argument_group("what to make")
    what.add_argument("--prompts", type=Path, required=True, metavar="FILE", help="a .txt, .csv or .jsonl file")
    what.add_argument("--seeds", default="0", help="seeds for every prompt: 0-7, 1,5,9 or 0-3,10 (default: 0)")
    what.add_argument("--out", "--output-dir", type=Path, metavar="DIR", help="default: generated/<prompts file name>")
    what.add_argument("--prompt-key", default="prompt", help="the CSV column or JSON key of the prompt")
    what.add_argument("--negative-prompt-key", default="negative_prompt", help="... of the negative prompt")
    what.add_argument("--seeds-key", default="seeds", help="... of a prompt's own seeds (replacing --seeds)")
    how = parser.add_argument_group("how to make it (the notebooks' parameters)")
    how.add_argument("--profile", default="auto", help="auto (default), gpu, mps, cpu or tiny")
    how.add_argument("--model-id", "--model", help="a Hub id, a local folder or tiny:base; default: the profile's")
    how.add_argument("--scheduler", help="a scheduler class name, e.g. DPMSolverMultistepScheduler")
    how.add_argument(
        "--num-inference-steps", type=int, metavar="N", help="default: the profile's (its fast count for DPMSolver...)"
    )
    how.add_argument("--guidance-scale", type=float, default=DEFAULT_GUIDANCE, metavar="G", help="default: 7.5")
    how.add_argument("--height", type=int, metavar="PX", help="a multiple of 8; default: the profile's")
    how.add_argument("--width", type=int, metavar="PX", help="a multiple of 8; default: the profile's")
    how.add_argument("--batch-size", type=int, metavar="N", help="images per call in each process")
    return parser.parse_args(argv)


def check_scheduler(name: str | None) -> None:
    """Refuse a scheduler name that Stable Diffusion cannot use, before anything is loaded."""
    if name is None:
        return
    from diffusers import PNDMScheduler

    infos = {info.name: info for info in list_schedulers(SimpleNamespace(scheduler=PNDMScheduler()))}
    if name not in infos:
        raise InputError(f"--scheduler {name!r} is not a Stable Diffusion scheduler; use one of {sorted(infos)}")
    if not infos[name].usable:
        raise InputError(f"--scheduler {name} needs {', '.join(infos[name].missing)}: pip install it first")


def check_out(out: Path) -> None:
    """Refuse an output folder that is a file, or a folder holding files this tool did not write."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder; give a folder (it is made if missing)")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_NAMES and not p.name.startswith("."))
        if foreign:
            raise InputError(
                f"--out {out} holds files this tool did not make ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); give a new folder, or an earlier run's --out to finish it"
            )


def plan(args: argparse.Namespace) -> tuple[Profile, Settings, list[Item], Path]:
    """Check every input and option; return the profile, the settings, every item and the output folder."""
    rows = read_prompts(args.prompts, args.prompt_key, args.negative_prompt_key, args.seeds_key)
    seeds = parse_seeds(args.seeds)
    try:
        profile = activate_profile(args.profile)
    except ValueError as err:
        raise InputError(f"--profile: {err}") from None
    check_scheduler(args.scheduler)
    try:
        where, kind = resolve_model(args.model_id, profile)
        fast = bool(args.scheduler) and args.scheduler.startswith("DPMSolver")
        size = generation_settings(args.num_inference_steps, args.height, args.width, fast=fast)
    except (ValueError, FileNotFoundError) as err:
        raise InputError(str(err).replace("model_id=", "--model-id ")) from None
    batch_size = profile.batch_size if args.batch_size is None else args.batch_size
    try:
        check_count("--batch-size", batch_size)
        check_number("--guidance-scale", args.guidance_scale, minimum=0, about="7.5 is usual")
    except ValueError as err:
        raise InputError(str(err)) from None
    model_id = str(Path(where).resolve()) if kind == "local" else (args.model_id or profile.base_model)
    settings = Settings(
        profile=profile.name,
        model_id=model_id,
        scheduler=args.scheduler,
        guidance_scale=args.guidance_scale,
        batch_size=batch_size,
        **size,
    )
    out = args.out if args.out is not None else Path("generated") / args.prompts.stem
    check_out(out)
    return profile, settings, build_items(rows, seeds), out


def process_device(profile: Profile, state) -> str:
    """This process's device: the profile's, and on CUDA accelerate's GPU for this process (``cuda:<local rank>``)."""
    return str(state.device) if profile.device == "cuda" and state.device.type == "cuda" else profile.device


def start_processes(profile: Profile):
    """accelerate's ``PartialState``: which process this is, of how many, on which device.

    PartialState joins the processes a launcher started into one group only on CUDA, unless it is told that it
    runs on CPUs (``PartialState(cpu=True)``); without that, each of them would make every image.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or profile.device != "cuda" or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    if state.num_processes == 1 and parse_flag_from_env("ACCELERATE_USE_CPU") and "MASTER_ADDR" in os.environ:
        print(ONE_CPU_PROCESS, file=sys.stderr, flush=True)
    return state


ONE_CPU_PROCESS = """\
generate: note: this is the only process. `accelerate launch --cpu --num_processes N` starts several CPU
processes only through MPI (add --mpirun_hostfile FILE); without it, start them with
`accelerate launch --multi_gpu --num_processes N` (torchrun, which works without a GPU too)."""


def _is_main_process() -> bool:
    """Before accelerate starts: whether this is the process that should speak (rank 0, or the only one)."""
    return os.environ.get("RANK", "0") == "0"


def fail(message: str) -> int:
    if _is_main_process():
        print(f"generate: error: {message}", file=sys.stderr, flush=True)
    return 2


def decide(state, out: Path, items: list[Item], settings: Settings) -> dict:
    """What is left to make, as the main process sees it in ``out``, told to every process so that all agree.

    Returns ``{"todo": [item index, ...], "existing": n}``, or ``{"error": message}`` for a folder made with
    other prompts or settings.
    """
    from accelerate.utils import broadcast_object_list

    message: list = [None]
    if state.is_main_process:
        try:
            out.mkdir(parents=True, exist_ok=True)
            todo, done = pending(out, items, settings)
            message = [{"todo": [item.index for item in todo], "existing": len(done)}]
        except InputError as err:
            message = [{"error": str(err)}]
    if state.num_processes > 1:
        broadcast_object_list(message)
    return message[0]


def make_share(state, pipe, todo: list[Item], out: Path, settings: Settings, device: str) -> list[dict]:
    """This process's share of the batches, with its progress bar; returns its manifest records."""
    from tqdm.auto import tqdm

    from .work import make_batches

    started = time.perf_counter()
    with state.split_between_processes(batches(todo, settings.batch_size)) as mine:
        count = sum(len(batch) for batch in mine)
        bar = tqdm(total=count, desc=f"process {state.process_index}", unit="image", position=state.local_process_index)
        records = make_batches(pipe, mine, out, settings, state.process_index, bar.update)
        bar.close()
    seconds = time.perf_counter() - started
    print(f"process {state.process_index} ({device}): made {len(records)} images in {seconds:.1f} s", flush=True)
    return records


def report(args, profile: Profile, state, out: Path, items: list[Item], records: list[dict], times: dict) -> int:
    """The main process's last word: environment, manifest, summary and gallery; 1 if an image is missing."""
    from ..envinfo import environment_record

    environment = environment_record(profile.name)
    (out / ENVIRONMENT).write_text(json.dumps(environment, indent=2) + "\n", encoding="utf-8")
    work = times["work_seconds"]
    summary = {
        "tool": "generate",
        "prompts": str(args.prompts),
        "profile": profile.name,
        "jobs": state.num_processes,
        "settings": times["settings"],
        "started": times["started"],
        "generate_seconds": round(work, 3),
        "images_per_second": round(len(records) / work, 3) if work > 0 else None,
        "seconds": round(time.perf_counter() - times["clock"], 3),
    }
    banner = None if profile.real_weights else TINY_BANNER
    summary = write_reports(out, items, records, summary, environment, banner)
    print(
        f"{summary['made']} made, {summary['existing']} already there, {summary['missing']} missing; "
        f"{summary['images_per_second']} images/s. Gallery: {out / GALLERY}",
        flush=True,
    )
    return 1 if summary["missing"] else 0


def main(argv: list[str] | None = None) -> int:
    times = {"clock": time.perf_counter(), "started": datetime.now(UTC).isoformat(timespec="seconds")}
    args = parse_args(argv)
    try:
        profile, settings, items, out = plan(args)
    except InputError as err:
        return fail(str(err))

    state = start_processes(profile)
    decision = decide(state, out, items, settings)
    if "error" in decision:
        state.destroy_process_group()
        return fail(decision["error"])
    todo = [items[i] for i in decision["todo"]]
    if state.is_main_process:
        print(
            f"{len(items)} images: {len(todo)} to make, {decision['existing']} already in {out}; "
            f"{state.num_processes} process(es), batches of {settings.batch_size}, profile {profile.name}, "
            f"{settings.model_id}",
            flush=True,
        )

    from accelerate.utils import gather_object

    from .work import load

    device = process_device(profile, state)
    try:
        with state.main_process_first():  # one download of a Hub model, then the others read the cache
            pipe = load(settings, device)
        work_started = time.perf_counter()
        records = make_share(state, pipe, todo, out, settings, device)
    except (ModelNotAvailableError, NoSafetensorsError) as err:  # their messages say what to do
        print(f"generate: error: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"generate: interrupted; run the same command again to make the rest (into {out})", file=sys.stderr)
        return 130
    records = gather_object(records)
    times.update(work_seconds=time.perf_counter() - work_started, settings=asdict(settings))
    status = report(args, profile, state, out, items, records, times) if state.is_main_process else 0
    state.destroy_process_group()
    return status


if __name__ == "__main__":
    sys.exit(main())
