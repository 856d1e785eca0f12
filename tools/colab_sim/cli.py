"""``make test-colab`` and ``make colab-refresh``.

Usage:
    python -m tools.colab_sim                        # every notebook, then the restart drill
    python -m tools.colab_sim --notebooks 02 05      # some notebooks (by number or name)
    python -m tools.colab_sim --no-drill             # without the restart drill
    python -m tools.colab_sim --jobs 1               # one session at a time (default: 2, one core each)
    python -m tools.colab_sim refresh                # colab-runtime.txt from googlecolab/backend-info
    python -m tools.colab_sim refresh --source DIR   # ... from a local clone of it

Each notebook runs in a session of its own (:mod:`.session`), as each Colab notebook gets its own runtime. The
restart drill then runs the first notebook once more in a Colab whose kernel had also imported the packages
that the setup cell replaces: there the setup cell must restart the runtime exactly once, and the notebook must
then run. The executed notebooks and ``summary.json`` go to ``build/colab-sim/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import nbformat

from tools import ROOT

from ..common import select_notebooks
from .image import base_image, cache_root, find_python, pip_environment
from .runtime import SOURCE, describe_refresh, read_runtime, refresh
from .session import (
    COLAB_PRELOADED,
    Baseline,
    SessionResult,
    python_json,
    run_session,
    snapshot_repository,
)

OUT = ROOT / "build" / "colab-sim"
# The top-level modules of installed distributions, by canonical distribution name.
MODULES_SCRIPT = (
    "import importlib.metadata as m, json, re; d = {}\n"
    "for mod, dists in m.packages_distributions().items():\n"
    "    [d.setdefault(re.sub(r'[-_.]+', '-', x).lower(), []).append(mod) for x in dists]\n"
    "print(json.dumps(d))"
)


def repository_url() -> str:
    """The URL the setup cells clone (pyproject's ``Repository``)."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]


def pick_notebooks(wanted: list[str] | None) -> list[Path]:
    """``notebooks/*.ipynb``, or those ``wanted`` names by number or name (``02``, ``05_memory``)."""
    try:
        return select_notebooks(sorted((ROOT / "notebooks").glob("*.ipynb")), wanted)
    except ValueError as err:
        raise SystemExit(f"colab_sim: {err}") from None


def replaced_modules(results: list[SessionResult], image: Path) -> list[str]:
    """Top-level modules of the distributions the setup cells replaced (not those they added)."""
    replaced = sorted({line.split(" ")[0] for r in results for line in r.changes if " -> " in line})
    modules = python_json(image / "venv", MODULES_SCRIPT, pip_environment())
    return sorted({module for name in replaced for module in modules.get(name, []) if not module.startswith("_")})


def session_folder(root: Path) -> Path:
    """``sessions-<pid>`` beside the image (hard links need the same file system); those of processes that are
    gone (a run that was killed) are removed first."""
    for stale in root.glob("sessions-*"):
        pid = stale.name.removeprefix("sessions-")
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    folder = root / f"sessions-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def line(result: SessionResult, label: str) -> str:
    setup = f"setup {result.setup_seconds:5.1f} s" if result.setup_seconds is not None else "setup    -   "
    rerun = f", after the restart {result.rerun_seconds:.1f} s" if result.rerun_seconds is not None else ""
    status = "ok  " if result.ok else "FAIL"
    return f"{status} {label:32} {setup}{rerun}; session {result.seconds:5.1f} s; restarts {result.restarts}"


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    runtime = read_runtime()
    print(f"Colab as published on {runtime.date} (backend-info {runtime.commit[:10]}), Python {runtime.python}")
    python = find_python(".".join(runtime.python.split(".")[:2]))
    image = base_image(runtime, python)
    baseline = Baseline.of(image)
    notebooks = pick_notebooks(args.notebooks)
    OUT.mkdir(parents=True, exist_ok=True)
    sessions = session_folder(cache_root() / "colab")
    results: list[tuple[str, SessionResult]] = []

    def session(notebook: Path, label: str, preloaded=COLAB_PRELOADED) -> SessionResult:
        folder = sessions / label
        try:
            result, executed = run_session(
                notebook, image, folder, repository_url(), snapshot_url, preloaded, baseline, args.cell_timeout
            )
        finally:
            if (folder / "kernel.log").exists():
                shutil.copyfile(folder / "kernel.log", OUT / f"{label}.kernel.log")
            shutil.rmtree(folder, ignore_errors=True)
        nbformat.write(executed, OUT / f"{label}.ipynb")
        results.append((label, result))
        print(line(result, label), flush=True)
        for problem in result.problems:
            print(f"     {problem}")
        return result

    try:
        with tempfile.TemporaryDirectory() as folder:
            snapshot_url = snapshot_repository(ROOT, Path(folder) / "repository")
            # Each session's kernel has one PyTorch thread (OMP_NUM_THREADS=1), so `jobs` of them share the cores.
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                list(pool.map(lambda notebook: session(notebook, notebook.stem), notebooks))
            results.sort(key=lambda item: item[0])
            if args.drill:
                drill(session, notebooks[0], image, [r for _, r in results])
    finally:
        shutil.rmtree(sessions, ignore_errors=True)
    changed = sorted({c for _, r in results[: len(notebooks)] for c in r.changes})
    print(f"What the setup cell changed in Colab: {'; '.join(changed) or 'nothing'}")
    summary = {"runtime": asdict(runtime) | {"pins": len(runtime.pins)}, "frontend_widgets": baseline.frontend_widgets}
    summary["sessions"] = {label: asdict(result) for label, result in results}
    summary["seconds"] = round(time.perf_counter() - start, 1)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    failed = [label for label, result in results if not result.ok]
    print(f"{len(results) - len(failed)} of {len(results)} sessions passed in {summary['seconds']:.0f} s; see {OUT}")
    return 1 if failed else 0


def drill(session, notebook: Path, image: Path, results: list[SessionResult]) -> None:
    """The first notebook again, in a Colab that had also imported what its setup cell replaces."""
    modules = replaced_modules(results, image)
    if not modules:
        print("Restart drill: skipped, the setup cells replaced nothing that Colab has")
        return
    print(f"Restart drill: {notebook.stem} in a Colab whose kernel had also imported {', '.join(modules)}")
    result = session(notebook, f"{notebook.stem}-restart-drill", (*COLAB_PRELOADED, *modules))
    if result.restarts != 1:
        result.problems.append(f"the setup cell restarted the runtime {result.restarts} times; expected exactly once")
        result.ok = False
        print(f"     {result.problems[-1]}")


def refresh_command(args: argparse.Namespace) -> int:
    old, new = refresh(args.source, add=tuple(args.add))
    changes = describe_refresh(old, new)
    print(f"colab-runtime.txt: googlecolab/backend-info {new.commit[:10]} ({new.date}: {new.subject})")
    print("\n".join(f"  {c}" for c in changes) or "  no change in the packages that matter")
    return 0


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m tools.colab_sim", description=__doc__.split("\n\n")[0])
    parse.add_argument("--notebooks", nargs="+", metavar="NAME", help="notebooks by number or name (default: all)")
    parse.add_argument("--no-drill", dest="drill", action="store_false", help="skip the restart drill")
    cores = os.cpu_count() or 1
    parse.add_argument(
        "--jobs", type=int, default=min(2, cores), help=f"sessions at once, one core each (default {min(2, cores)})"
    )
    parse.add_argument("--cell-timeout", type=int, default=300, metavar="SECONDS", help="per cell (default 300)")
    parse.set_defaults(command=run)
    sub = parse.add_subparsers(title="other commands")
    update = sub.add_parser("refresh", help="update colab-runtime.txt from googlecolab/backend-info")
    update.add_argument("--source", default=SOURCE, help=f"a URL or a local clone (default {SOURCE})")
    update.add_argument("--add", nargs="+", default=[], metavar="NAME", help="also keep these packages' lines")
    update.set_defaults(command=refresh_command)
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.command(args)
