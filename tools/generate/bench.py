"""Images per second of ``make generate`` with 1 and 2 processes, against a plain loop making the same images.

The plain loop is what a user would write without the tool: load the pipeline, call it batch by batch with one
seeded CPU generator per image, save each image with ``save_images``. The tool adds the checks, accelerate, the
manifest, the environment record and the gallery. All three are timed as whole processes (start-up included),
in rounds: the best round of each is the figure (other work on the machine only ever adds time). Their CPU
time (user + system, of every process they started) is given too; note that PyTorch threads spin while they wait
for a core, so on a busy machine a process of 2 threads burns more CPU than 2 processes of 1. The images of all
three are compared pixel by pixel: a process with another number of CPU threads may round the last bit
differently (one level of 255 at most; the same threads give the same pixels).

Usage:
    python -m tools.generate.bench                       # tiny profile, 8 prompts x 8 seeds, 3 rounds
    python -m tools.generate.bench --prompts 4 --seeds 0-3 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.tables import markdown_table
from tools import ROOT

from ..common import free_port

TABLE_COLUMNS = [
    "how",
    "wall time",
    "images/s",
    "images/s, generation only",
    "wall vs plain",
    "CPU time",
    "CPU vs plain",
]
PLAIN_LOOP = """\
import sys
import torch
from helpers import activate_profile, load_pipeline, save_images
from tools.generate.prompts import parse_seeds

prompts_file, seeds, batch_size, out = sys.argv[1], parse_seeds(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
profile = activate_profile("{profile}")
pipe = load_pipeline()
pipe.set_progress_bar_config(disable=True)
prompts = [line.strip() for line in open(prompts_file, encoding="utf-8") if line.strip()]
jobs = [(p, prompt, seed) for p, prompt in enumerate(prompts) for seed in seeds]
for start in range(0, len(jobs), batch_size):
    chunk = jobs[start : start + batch_size]
    inputs = {{
        "prompt": [prompt for _, prompt, _ in chunk],
        "generator": [torch.Generator("cpu").manual_seed(seed) for _, _, seed in chunk],
        "num_inference_steps": profile.num_inference_steps,
        "height": profile.height,
        "width": profile.width,
        "guidance_scale": 7.5,
    }}
    images = pipe(**inputs).images
    for i, (image, (p, prompt, seed)) in enumerate(zip(images, chunk)):
        one = {{k: v[i : i + 1] if isinstance(v, list) else v for k, v in inputs.items()}}
        save_images([image], out, pipe=pipe, inputs=one, prefix=f"p{{p:04d}}-s{{seed}}-{{prompt}}")
"""


def command(kind: str, prompts: Path, seeds: str, batch_size: int, out: Path, profile: str) -> list[str]:
    """The command line of one variant: ``plain``, ``1 process`` or ``2 processes``."""
    if kind == "plain":
        code = PLAIN_LOOP.format(profile=profile)
        return [sys.executable, "-c", code, str(prompts), seeds, str(batch_size), str(out)]
    args = ["--prompts", str(prompts), "--seeds", seeds, "--batch-size", str(batch_size), "--out", str(out)]
    args += ["--profile", profile]
    if kind == "1 process":
        return [sys.executable, "-m", "tools.generate", *args]
    return launch_command(2, args)


def launch_command(processes: int, args: list[str]) -> list[str]:
    """``accelerate launch --multi_gpu --num_processes N ... -m tools.generate ARGS``, on a free port, on a CPU."""
    launch = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes"]
    launch += [str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launch, "--main_process_port", str(free_port()), "-m", "tools.generate", *args]


def _children_cpu() -> float:
    """User + system seconds of every finished child process (and their children) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def images_of(out: Path) -> dict[str, np.ndarray]:
    """Each image of a folder by its item (``p0003-s5``), as pixels."""
    folder = out / "images" if (out / "images").is_dir() else out
    found = {}
    for png in folder.glob("*.png"):
        with Image.open(png) as img:
            found["-".join(png.name.split("-")[:2])] = np.asarray(img)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.generate.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--prompts", type=int, default=8, help="how many prompts (default 8)")
    parser.add_argument("--seeds", default="0-7", help="default 0-7")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "bench-generate")
    args = parser.parse_args(argv)

    work = args.work_dir / time.strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True)
    prompts = work / "prompts.txt"
    prompts.write_text("".join(f"a picture number {n}\n" for n in range(args.prompts)), encoding="utf-8")
    kinds = ("plain", "1 process", "2 processes")
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    worst = 0
    inner: dict[str, list[float]] = {kind: [] for kind in kinds[1:]}
    count = 0
    for round_ in range(args.rounds):
        made = {}
        for kind in kinds:
            out = work / f"{round_}-{kind.replace(' ', '-')}"
            cmd = command(kind, prompts, args.seeds, args.batch_size, out, args.profile)
            used, start = _children_cpu(), time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds[kind].append(time.perf_counter() - start)
            cpu[kind].append(_children_cpu() - used)
            made[kind] = images_of(out)
            if kind != "plain":
                inner[kind].append(json.loads((out / "summary.json").read_text())["images_per_second"])
            print(f"round {round_ + 1}, {kind}: {seconds[kind][-1]:.1f} s for {len(made[kind])} images", flush=True)
        count = len(made["plain"])
        for kind in kinds[1:]:
            if made[kind].keys() != made["plain"].keys():
                print(f"round {round_ + 1}: {kind} made other images than the plain loop", file=sys.stderr)
                return 1
            for key, plain_pixels in made["plain"].items():
                difference = np.abs(made[kind][key].astype(int) - plain_pixels.astype(int)).max()
                worst = max(worst, int(difference))
    if worst > 1:
        print(f"images differ from the plain loop's by up to {worst} levels of 255", file=sys.stderr)
        return 1

    plain = min(seconds["plain"])
    print(
        f"\n{count} images ({args.prompts} prompts x seeds {args.seeds}), batches of {args.batch_size}, profile "
        f"{args.profile}; {os.cpu_count()} CPU cores; the best of {args.rounds} rounds (CPU time: the median):\n"
    )
    plain_cpu = statistics.median(cpu["plain"])
    rows = []
    for kind in kinds:
        wall, used = min(seconds[kind]), statistics.median(cpu[kind])
        only = f"{max(inner[kind]):.2f}" if kind in inner else "—"
        rows.append(
            [
                kind,
                f"{wall:.1f} s",
                f"{count / wall:.2f}",
                only,
                f"{wall / plain:.2f}x",
                f"{used:.1f} s",
                f"{used / plain_cpu:.2f}x",
            ]
        )
    print(markdown_table(rows, TABLE_COLUMNS, right=TABLE_COLUMNS[1:]))
    print(f"\nThe tool's images differ from the plain loop's by at most {worst} level(s) of 255.")
    print("Every wall time:", {kind: [round(s, 1) for s in values] for kind, values in seconds.items()})
    print("Every CPU time:", {kind: [round(s, 1) for s in values] for kind, values in cpu.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
