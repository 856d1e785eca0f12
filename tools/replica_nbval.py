"""`make test-replica`: nbval of every notebook that has a golden, on the SD1.5 replica, one notebook at a time.

The same references as ``make test`` (``tests/goldens/*.ipynb``, every one found), run with ``SD_PROFILE=replica``:
Stable Diffusion 1.5's exact architecture with random weights, safety checker included. On a CPU that is 64 px,
1 step and the cpu profile's batches of 2 and 4 in fp32; on CUDA the gpu profile's 512 px, fp16, batches of 8 and
16. The replica is built into the cache first (once; on the GPU when there is one). Notebooks run one at a time,
so that the memory peak is one notebook's; each one's seconds and peak memory (its kernel's resident memory, and
on CUDA the GPU's memory in use as ``nvidia-smi`` reports it) are printed in a table, and the command fails if a
notebook fails or goes over ``--max-rss-gib``.

Example:
    $ make test-replica
    $ python -m tools.replica_nbval --notebooks 01 06 --report replica.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from helpers.tables import markdown_table
from tools import ROOT

from .common import NotebookResult, select_notebooks

GOLDENS = ROOT / "tests" / "goldens"


def goldens(selected: Sequence[str] | None = None, folder: Path = GOLDENS) -> list[Path]:
    """The goldens, sorted; ``selected`` keeps those it names by number or name (``"03"``, ``"05_memory"``)."""
    return select_notebooks(sorted(folder.glob("*.ipynb")), selected)


class GpuMemorySampler:
    """The most GPU memory in use (MiB, as ``nvidia-smi`` reports) while it runs; polls every ``interval`` s."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak_mib, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def used_mib() -> int:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sum(int(line) for line in out.split())

    def _poll(self):
        while not self._stop.is_set():
            try:
                self.peak_mib = max(self.peak_mib, self.used_mib())
            except (OSError, subprocess.CalledProcessError, ValueError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def replica_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a notebook run under the replica: offline, no display, all cores for one notebook."""
    return {
        **os.environ,
        "SD_PROFILE": "replica",
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": str(threads or os.cpu_count() or 1),
    }


def run_notebook(path: Path, env: dict[str, str], cell_timeout: int, gpu: bool = False) -> NotebookResult:
    """nbval of one golden in its own pytest process; its peak RSS covers the notebook's kernel (a child)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env"]
    cmd += [f"--nbval-cell-timeout={cell_timeout}", str(path)]
    started = time.perf_counter()
    sampler = GpuMemorySampler() if gpu else None
    with sampler or contextlib.nullcontext(), open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of pytest and of the kernel it reaped
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode < 0:  # pytest itself died: say so, its output ends without a summary
        output += f"\n(pytest was killed by signal {-proc.returncode})"
    return NotebookResult(
        notebook=path.stem,
        status="ok" if proc.returncode == 0 else "failed",
        seconds=time.perf_counter() - started,
        peak_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
        memory_kind="process RSS",
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        gpu_peak_bytes=sampler.peak_mib * 2**20 if sampler else None,
        output=output,
    )


def build_replicas(dtype, device: str | None = None) -> dict[str, float]:
    """Build both replicas (base, finetuned) into the cache if needed; return the seconds each took."""
    from helpers.standins.replica import KINDS, replica_model_path

    seconds = {}
    for kind in KINDS:
        started = time.perf_counter()
        replica_model_path(kind, dtype, device=device)
        seconds[kind] = time.perf_counter() - started
    return seconds


# Run in a fresh process: what a notebook's load cell costs once the model is in the cache (the page cache warm).
FRESH_LOAD = """
import json, time
start = time.perf_counter()
from helpers import load_pipeline
from diffusers import StableDiffusionPipeline
imported = time.perf_counter()
pipe = load_pipeline({model!r}, profile={profile!r})
loaded = time.perf_counter()
print(json.dumps({{"import_s": imported - start, "load_s": loaded - imported, "class": type(pipe).__name__}}))
"""


def fresh_load_seconds(model: str, profile: str, env: dict[str, str] | None = None) -> dict:
    """Load ``model`` with :func:`helpers.load_pipeline` in a fresh Python process, as a notebook's kernel does.

    Returns ``{"import_s": ..., "load_s": ..., "class": ...}``: the seconds to import helpers and diffusers'
    pipeline, then those of ``load_pipeline`` itself (``from_pretrained`` and ``.to(device)``).

    Example:
        >>> fresh_load_seconds("tiny:base", "tiny")["class"]  # doctest: +SKIP
        'StableDiffusionPipeline'
    """
    code = FRESH_LOAD.format(model=model, profile=profile)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env or os.environ.copy(), capture_output=True, text=True
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise RuntimeError(f"loading {model!r} in a fresh process failed: {lines[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def results_table(results: Sequence[NotebookResult]) -> str:
    """A Markdown table: notebook, result, seconds, peak RSS and, when measured, peak GPU memory; then a total."""
    gpu = any(r.gpu_peak_bytes is not None for r in results)
    columns = ["notebook", "nbval", "seconds", "CPU seconds", "peak RSS (GiB)"] + ["peak GPU memory (GiB)"] * gpu

    def gib(count: int | None) -> str:
        return "" if count is None else f"{count / 2**30:.2f}"

    rows = [
        [r.notebook, "passed" if r.ok else "FAILED", f"{r.seconds:.1f}", _whole(r.cpu_seconds), gib(r.peak_bytes)]
        + [gib(r.gpu_peak_bytes)] * gpu
        for r in results
    ]
    total = [
        "all",
        f"{sum(r.ok for r in results)}/{len(results)} passed",
        f"{sum(r.seconds for r in results):.1f}",
        _whole(sum(r.cpu_seconds or 0 for r in results)),
        gib(max((r.peak_bytes or 0 for r in results), default=0)),
    ]
    total += [gib(max((r.gpu_peak_bytes or 0 for r in results), default=0))] * gpu
    return markdown_table([*rows, total], columns, right=columns[2:])


def _whole(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.0f}"


def run_goldens(
    paths: Sequence[Path], cell_timeout: int, gpu: bool = False, say=print, threads: int | None = None
) -> list[NotebookResult]:
    """nbval of each golden under the replica, one after the other."""
    env = replica_env(threads)
    results = []
    for i, path in enumerate(paths, 1):
        result = run_notebook(path, env, cell_timeout, gpu)
        say(
            f"[{i}/{len(paths)}] {path.stem}: {'passed' if result.ok else 'FAILED'} in {result.seconds:.1f} s, "
            f"{result.cpu_seconds:.0f} CPU-s, peak RSS {result.peak_bytes / 2**30:.2f} GiB",
        )
        if not result.ok:
            say(result.output[-4000:])
        results.append(result)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.replica_nbval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", metavar="NB", help="which goldens: 03 05 (default: every one)")
    parser.add_argument("--max-rss-gib", type=float, default=12.0, help="fail above this peak RSS (default 12)")
    parser.add_argument("--cell-timeout", type=int, default=1800, help="seconds a cell may take (default 1800)")
    parser.add_argument("--report", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if args.max_rss_gib <= 0:
        parser.error(f"--max-rss-gib={args.max_rss_gib} must be positive, e.g. 12")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        paths = goldens(args.notebooks)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import torch

    from helpers.profiles import resolve_profile

    profile = resolve_profile("replica")
    print(f"test-replica: {len(paths)} notebooks, {profile.description}", flush=True)
    built = build_replicas(profile.dtype)
    print("replica in the cache: " + ", ".join(f"{k} {s:.1f} s" for k, s in built.items()), flush=True)
    load = fresh_load_seconds("replica:base", "replica", replica_env())
    print(
        f"replica:base loaded again in a fresh process: load_pipeline {load['load_s']:.1f} s, after importing helpers "
        f"and diffusers' pipeline in {load['import_s']:.1f} s",
        flush=True,
    )
    started = time.perf_counter()
    results = run_goldens(paths, args.cell_timeout, gpu=torch.cuda.is_available())
    table = results_table(results)
    print(f"\n{table}\n\ntest-replica: {time.perf_counter() - started:.0f} s in all", flush=True)
    if args.report:
        args.report.write_text(table + "\n")
    over = [r.notebook for r in results if (r.peak_bytes or 0) > args.max_rss_gib * 2**30]
    if over:
        print(f"error: peak RSS over {args.max_rss_gib} GiB in {over}", file=sys.stderr)
    return 0 if all(r.ok for r in results) and not over else 1


if __name__ == "__main__":
    sys.exit(main())
