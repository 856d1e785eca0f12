"""`make gpu-check`: everything a GPU machine without the Hub can check, in one command, with a short report.

On a CUDA machine with the environment set up (``make setup``), it

1. builds the SD1.5 replica (base and fine-tuned stand-ins) in fp16, initialised on the GPU;
2. runs nbval of every notebook that has a golden under ``SD_PROFILE=replica`` (512 px, fp16, batches of 8, 16);
3. runs ``make run-all``'s tool under the replica profile;
4. times 512 px pictures with DPM-Solver, 20 steps, at batch 1 and 8;

and writes a Markdown report (GPU, driver, per-notebook seconds and peak memory, seconds per picture) to
``docs/gpu-check-<gpu>.md``, to be committed with the GPU named. Without CUDA it stops at once, saying so.

Example:
    $ make gpu-check
    $ python -m tools.gpu_check --skip-run-all --output /tmp/report.md
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from helpers.tables import markdown_table

from .common import NotebookResult
from .replica_nbval import ROOT, build_replicas, goldens, results_table, run_goldens

DOCS = ROOT / "docs"
BENCH_BATCHES = (1, 8)
BENCH_STEPS = 20
RUN_ALL_COLUMNS = ["notebook", "status", "seconds", "peak GPU memory allocated (MiB)"]
BENCH_COLUMNS = ["batch", "seconds per picture"]


def gpu_facts(query=None) -> dict[str, str]:
    """GPU name, driver and memory from ``nvidia-smi`` (``query`` replaces the call, for tests)."""
    fields = ("name", "driver_version", "memory.total")
    if query is None:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    else:
        out = query
    first = out.strip().splitlines()[0]
    return dict(zip(("gpu", "driver", "memory"), (part.strip() for part in first.split(",")), strict=True))


def report_path(gpu: str, folder: Path = DOCS) -> Path:
    """``docs/gpu-check-<gpu name as a file name>.md``, e.g. ``docs/gpu-check-nvidia-h100-80gb-hbm3.md``."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-") or "gpu"
    return folder / f"gpu-check-{slug}.md"


def bench(batches: Sequence[int] = BENCH_BATCHES, steps: int = BENCH_STEPS) -> dict[int, float]:
    """Seconds per 512 px picture with DPM-Solver at ``steps`` steps, for each batch size (after a warm-up)."""
    import torch

    from helpers.loading import load_pipeline
    from helpers.schedulers import set_scheduler

    pipe = load_pipeline(profile="replica")
    pipe.set_progress_bar_config(disable=True)
    set_scheduler(pipe, "DPMSolverMultistepScheduler")
    prompt = "portrait photo of a old warrior chief"
    pipe([prompt], num_inference_steps=2, height=512, width=512)  # warm-up: kernels, allocator
    per_image = {}
    for batch in batches:
        torch.cuda.synchronize()
        started = time.perf_counter()
        pipe([prompt] * batch, num_inference_steps=steps, height=512, width=512)
        torch.cuda.synchronize()
        per_image[batch] = (time.perf_counter() - started) / batch
    del pipe
    torch.cuda.empty_cache()
    return per_image


def run_all(say=print) -> tuple[float, dict]:
    """``python -m tools.run_all --profile replica`` into runs/; its seconds and its summary."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tools.run_all", "--profile", "replica"], cwd=ROOT)
    seconds = time.perf_counter() - started
    runs = sorted((ROOT / "runs").glob("*-replica/summary.json"))
    summary = json.loads(runs[-1].read_text()) if runs else {}
    if done.returncode:
        say(f"run-all exited with code {done.returncode}")
    return seconds, summary


def render_report(facts: dict) -> str:
    """The Markdown report of a gpu-check, from what :func:`main` measured (tests build ``facts`` by hand)."""
    lines = [
        f"# make gpu-check on {facts['gpu']}",
        "",
        f"{facts['date']}: driver {facts['driver']}, {facts['memory']}, torch {facts['torch']} (CUDA {facts['cuda']}), "
        f"commit {facts['commit']}. Replica weights (random; SD1.5's exact architecture), fp16, 512 px.",
        "",
        f"Total: {facts['total_seconds']:.0f} s. Replica build (on the GPU, fp16): "
        + ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in facts["build_seconds"].items())
        + ".",
        "",
        "## nbval of the notebooks (SD_PROFILE=replica)",
        "",
        results_table(facts["nbval"]),
        "",
    ]
    if facts.get("run_all") is not None:
        summary = facts["run_all"]
        rows = [
            [nb["notebook"], nb["status"], _number(nb.get("seconds"), "{:.1f}"), _number(nb.get("peak_mib"), "{:,.0f}")]
            for nb in summary.get("notebooks", [])
        ]
        lines += [
            f"## run-all under replica: {facts['run_all_seconds']:.0f} s, status {summary.get('status', '?')}",
            "",
            markdown_table(rows, RUN_ALL_COLUMNS, right=RUN_ALL_COLUMNS[2:]),
            "",
        ]
    bench_rows = [[batch, f"{seconds:.3f}"] for batch, seconds in facts["bench"].items()]
    lines += [
        f"## Seconds per 512 px picture, DPM-Solver, {BENCH_STEPS} steps",
        "",
        markdown_table(bench_rows, BENCH_COLUMNS, right=BENCH_COLUMNS),
    ]
    return "\n".join(lines) + "\n"


def _number(value: float | None, form: str) -> str:
    """``value`` in ``form``, or an empty cell when it was not measured."""
    return "" if value is None else form.format(value)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="the report's path (default: docs/gpu-check-<gpu>.md)")
    parser.add_argument("--notebooks", nargs="+", metavar="NB", help="which goldens for nbval (default: all)")
    parser.add_argument("--skip-run-all", action="store_true", help="leave out the run-all step")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds an nbval cell may take (default 600)")
    return parser.parse_args(argv)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "error: make gpu-check needs a CUDA GPU and torch.cuda.is_available() is False here; "
            "on a CPU, run make test-replica (the same notebooks on the replica at 64 px)",
            file=sys.stderr,
        )
        return 2
    try:
        paths = goldens(args.notebooks)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    facts = {
        **gpu_facts(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "commit": _commit(),
    }
    print(f"gpu-check on {facts['gpu']} (driver {facts['driver']})", flush=True)
    facts["build_seconds"] = build_replicas(torch.float16, device="cuda")
    print("replica built: " + ", ".join(f"{k} {s:.1f} s" for k, s in facts["build_seconds"].items()), flush=True)
    nbval: list[NotebookResult] = run_goldens(paths, args.cell_timeout, gpu=True)
    facts["nbval"] = nbval
    facts["run_all"] = None
    if not args.skip_run_all:
        facts["run_all_seconds"], facts["run_all"] = run_all()
    facts["bench"] = bench()
    facts["total_seconds"] = time.perf_counter() - started
    report = render_report(facts)
    output = args.output or report_path(facts["gpu"])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(f"\n{report}\nreport written to {output}", flush=True)
    failed = not all(r.ok for r in nbval) or (facts["run_all"] or {}).get("failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
