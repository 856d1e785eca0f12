"""Run every notebook through papermill into a new run folder, with a report and an image gallery.

Each run writes ``runs/<UTC time>-<profile>/`` (see :mod:`tools.run_all.state` for what it holds) and points
``runs/latest`` at it. Parameters come from each notebook's ``parameters`` cell, then
``notebooks/params/<profile>.yaml``, then the command line (see :mod:`tools.run_all.params`);
every name, type and count (``num_inference_steps=-5``) is checked before any kernel starts. One failing notebook
does not stop the others; the exit code is 1 when any failed, 2 for bad arguments, 130/143 when Ctrl-C/SIGTERM
stopped the run (resume it with ``--resume latest``).

Usage:
    python -m tools.run_all                                  # every notebook, the best profile for this machine
    python -m tools.run_all --profile tiny --jobs 2 --notebooks 03 05 -p seed 3
    python -m tools.run_all --params 'seed=3 02.prompt="a red fox"'
    python -m tools.run_all --resume latest                  # run what an interrupted run left
    python -m tools.run_all --list-params                    # what each notebook lets you set
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from helpers.checks import check_count
from helpers.profiles import Profile, resolve_profile, standin_banner
from tools import ROOT

from ..common import NotebookResult, select_notebooks
from ..envinfo import environment_record
from .jobs import JobRunner, cpu_threads_env, gpu_slots, visible_gpus
from .notebook import run_notebook
from .params import (
    ParameterError,
    declared_parameters,
    load_param_file,
    parse_overrides,
    resolve_parameters,
)
from .report import format_error, format_memory, headline, render_html, summary_table, write_reports
from .state import (
    RunState,
    executed_notebook,
    find_run,
    images_dir,
    longest_first,
    new_run_folder,
    point_latest,
    previous_seconds,
    set_aside,
    utc_now,
)

_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print one progress line (whole, even when several jobs finish at once)."""
    with _print_lock:
        print(line, flush=True)


def discover(notebooks_dir: Path) -> dict[str, Path]:
    """The notebooks in ``notebooks_dir``, by stem, in name order."""
    found = {p.stem: p.resolve() for p in sorted(notebooks_dir.glob("*.ipynb"))}
    if not found:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {notebooks_dir}; pass --notebooks-dir")
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.run_all",
        description=__doc__.split("\n\n")[0],
        epilog="docs/tools.md: 'Run every notebook'.",
    )
    parser.add_argument("--profile", help="auto (default), gpu, mps, cpu or tiny")
    parser.add_argument("--notebooks", nargs="+", metavar="NB", help="which notebooks: 03 05, or file names")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (NAME or NB.NAME), papermill style; repeatable",
    )
    parser.add_argument(
        "--params",
        action="append",
        default=[],
        metavar="'K=V ...'",
        help="parameters as name=value words, e.g. 'seed=3 prompt=\"a red fox\"'",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="notebooks at once; default: one per GPU on CUDA, 2 on a CPU with two cores or more, 1 on MPS",
    )
    parser.add_argument("--resume", metavar="RUN", help="a run folder (or 'latest') to finish")
    parser.add_argument("--cell-timeout", type=float, metavar="S", help="seconds a cell may take (default: no limit)")
    parser.add_argument("--notebooks-dir", type=Path, default=ROOT / "notebooks", help="default: notebooks/")
    parser.add_argument("--params-dir", type=Path, help="default: <notebooks-dir>/params")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs", help="default: runs/")
    parser.add_argument("--list-params", action="store_true", help="list each notebook's parameters and exit")
    return parser.parse_args(argv)


def list_params(sources: dict[str, Path]) -> None:
    import papermill

    for stem, path in sources.items():
        print(stem)
        for name, info in papermill.inspect_notebook(str(path)).items():
            comment = f"  # {info['help']}" if info["help"] else ""
            print(f"    {name} = {info['default']}{comment}")


# Notebooks at once on a CPU-only machine when --jobs is not given: the fastest measured on two cores (tiny
# profile, the six notebooks there were then: JOBS=1 82.6 s, JOBS=2 57.7 s; each kernel gets cores / JOBS threads).
CPU_JOBS = 2


def check_jobs(jobs: int | None, profile: Profile) -> int:
    """``--jobs`` as given; else one per GPU on CUDA, ``CPU_JOBS`` (at most one per core) on the CPU, 1 on MPS."""
    if jobs is None:
        if profile.device == "cuda":
            return max(1, len(visible_gpus()))
        if profile.device == "cpu" and profile.name != "replica":  # a replica on a CPU takes 6 to 11 GB
            return max(1, min(CPU_JOBS, os.cpu_count() or 1))
        return 1
    return check_count("--jobs", jobs)


def plan_new_run(args: argparse.Namespace) -> tuple[Profile, dict[str, Path], dict[str, dict]]:
    """Check everything a new run needs, before it starts: the profile, the notebooks, every parameter."""
    profile = resolve_profile(args.profile or "auto")
    args.jobs = check_jobs(args.jobs, profile)
    sources = discover(args.notebooks_dir)
    selected = [path.stem for path in select_notebooks(sources.values(), args.notebooks)]
    params_file = (args.params_dir or args.notebooks_dir / "params") / f"{profile.name}.yaml"
    common, sections = load_param_file(params_file)
    overrides = parse_overrides([*args.params, *(f"{name}={value}" for name, value in args.parameter)])
    declared = {stem: declared_parameters(path) for stem, path in sources.items()}
    parameters = resolve_parameters(declared, selected, common, sections, overrides, source=str(params_file))
    return profile, {stem: sources[stem] for stem in selected}, parameters


def plan_resume(args: argparse.Namespace) -> tuple[RunState, Profile]:
    """Load an unfinished run and check that it can go on: not running elsewhere, its notebooks still there."""
    state = RunState.load(find_run(args.runs_dir, args.resume))
    new_profile = args.profile not in (None, "auto", state.data["profile"])
    if new_profile or args.notebooks or args.parameter or any(p.strip() for p in args.params):
        raise ParameterError(
            f"--resume runs the rest of a run with its own profile ({state.data['profile']}), notebooks and "
            "parameters; start a new run to change them"
        )
    pid = state.data.get("runner_pid")
    if state.data["status"] == "running" and pid != os.getpid() and _alive(pid):
        raise ParameterError(f"{state.folder.name} is still running (process {pid}); stop it first or wait")
    for stem in state.missing():
        source = Path(state.notebooks[stem]["source"])
        if not source.exists():
            raise FileNotFoundError(f"{stem}: its notebook {source} is gone, so it cannot be resumed")
    profile = resolve_profile(state.data["profile"])
    args.jobs = check_jobs(args.jobs, profile)
    return state, profile


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return "tools.run_all" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def progress_line(index: str, stem: str, result: NotebookResult) -> str:
    """``[2/6] 02_text_to_image: ok in 8.1 s, peak 612 MiB (process RSS), 4 images``, or the failure."""
    if result.ok:
        peak_mib = None if result.peak_bytes is None else result.peak_bytes / 2**20
        memory = format_memory(peak_mib, result.memory_kind)
        return f"{index} {stem}: ok in {result.seconds:.1f} s, peak {memory}, {result.images} images"
    return f"{index} {stem}: {result.status.upper()} after {result.seconds:.1f} s: {format_error(result.error)}"


class Session:
    """One sitting of a run: runs the notebooks it is given, keeps the state and the report up to date."""

    def __init__(self, state: RunState, profile: Profile, jobs: int, cell_timeout: float | None):
        self.state, self.profile, self.cell_timeout = state, profile, cell_timeout
        self.banner = standin_banner(profile)
        self.order = {stem: f"[{i}/{len(state.notebooks)}]" for i, stem in enumerate(state.notebooks, 1)}
        self.runner = JobRunner(gpu_slots(jobs, visible_gpus() if profile.device == "cuda" else []))
        self.threads = cpu_threads_env(jobs, os.cpu_count(), dict(os.environ))
        self.environment: dict | None = None
        self._reports_lock = threading.Lock()
        self._html = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-all-html")

    def refresh(self) -> dict:
        """Rewrite summary.json, summary.md and index.html from the current state."""
        with self._reports_lock:
            return write_reports(self.state.folder, self.state.snapshot(), self.environment, self.banner)

    def record_environment(self) -> None:
        self.environment = environment_record(self.profile.name)
        text = json.dumps(self.environment, indent=2)
        (self.state.folder / "environment.json").write_text(text, encoding="utf-8")

    def run_one(self, stem: str, extra_env: dict[str, str]) -> NotebookResult:
        """Run one notebook (in a job thread), record how it went, queue its HTML rendering."""
        folder, nb = self.state.folder, self.state.notebooks[stem]
        self.state.update(stem, status="running", attempts=nb.get("attempts", 0) + 1, error=None)
        gpu = f" on GPU {extra_env['CUDA_VISIBLE_DEVICES']}" if extra_env else ""
        say(f"{self.order[stem]} {stem}: running{gpu}")
        result = run_notebook(
            Path(nb["source"]),
            folder,
            stem,
            {**nb["parameters"], "profile": self.profile.name, "output_dir": str(images_dir(folder, stem))},
            device=self.profile.device,
            extra_env={**self.threads, **extra_env},
            cell_timeout=self.cell_timeout,
            on_kernel_start=lambda pid: self.runner.kernel_started(stem, pid),
            interrupted=self.runner.stopping.is_set,
        )
        self.state.update(stem, **result.as_dict())
        say(progress_line(self.order[stem], stem, result))
        if executed_notebook(folder, stem).exists():
            self._html.submit(render_html, executed_notebook(folder, stem))
        self.refresh()
        return result

    def run(self, stems: list[str]) -> int:
        """Run ``stems``, write the report, print the summary; returns the exit code."""
        start = time.perf_counter()
        env_thread = threading.Thread(target=self.record_environment, name="run-all-env", daemon=True)
        env_thread.start()
        stopped_by = self.runner.run_all(stems, self.run_one)
        self._html.shutdown(wait=True)
        env_thread.join()
        seconds = (self.state.data.get("seconds") or 0) + time.perf_counter() - start
        complete = stopped_by is None and not self.state.missing()
        self.state.set(status="complete" if complete else "incomplete", finished=utc_now(), seconds=round(seconds, 2))
        summary = self.refresh()
        folder = self.state.folder
        say(f"\n{summary_table(summary)}\n\n{headline(summary)} in {seconds:.1f} s. Gallery: {folder / 'index.html'}")
        if stopped_by is not None:
            say(
                f"Stopped by {signal.Signals(stopped_by).name}. "
                f"Finish it with: make run-all RESUME={folder}  (or python -m tools.run_all --resume {folder})"
            )
            return 128 + int(stopped_by)
        return 1 if summary["failed"] else 0


def start_new_run(args: argparse.Namespace) -> tuple[RunState, Profile]:
    """Check the plan, then make the run folder and its state file, and point runs/latest at it."""
    profile, sources, parameters = plan_new_run(args)
    folder = new_run_folder(args.runs_dir, profile.name)
    state = RunState.create(folder, profile.name, args.jobs, parameters, sources)
    point_latest(args.runs_dir, folder)
    say(f"run-all: {len(parameters)} notebooks, profile {profile.name}, JOBS={args.jobs} -> {folder}")
    return state, profile


def start_resume(args: argparse.Namespace) -> tuple[RunState, Profile]:
    """Set aside what unfinished notebooks left and mark them pending again."""
    state, profile = plan_resume(args)
    missing = state.missing()
    for stem in missing:
        moved = set_aside(state.folder, stem)
        if moved:
            say(f"{stem}: what the interrupted attempt left is kept in {moved.relative_to(state.folder)}")
        state.update(stem, status="pending")
    state.set(status="running", runner_pid=os.getpid(), resumed=utc_now(), jobs=args.jobs)
    say(f"run-all: resuming {state.folder} ({len(missing)} of {len(state.notebooks)} notebooks left)")
    return state, profile


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.list_params:
            list_params(discover(args.notebooks_dir))
            return 0
        state, profile = start_resume(args) if args.resume else start_new_run(args)
    except (ParameterError, FileNotFoundError, ValueError) as err:
        print(f"run-all: {err}", file=sys.stderr)
        return 2
    if standin_banner(profile):
        print(standin_banner(profile), flush=True)
    stems = state.missing()
    if args.jobs > 1:  # start the longest notebooks first (as they took last time), so the jobs end together
        stems = longest_first(stems, previous_seconds(args.runs_dir, profile.name, exclude=state.folder))
    return Session(state, profile, args.jobs, args.cell_timeout).run(stems)
