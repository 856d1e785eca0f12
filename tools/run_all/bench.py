"""What run-all costs on top of the work itself: run-all against the same notebooks run as plain scripts.

Each notebook gets the parameters run-all would give it (papermill's own ``parameterize_notebook``), its code
cells are exported to a script (nbconvert's ``PythonExporter``, which turns magics into ``get_ipython()`` calls)
and the scripts run one after another with IPython, each in a fresh process, saving their images to a scratch
folder. Then ``python -m tools.run_all`` runs the same notebooks with the same parameters as a user would
start it. Both are wall times of whole processes; the ratio is run-all's overhead (kernels, papermill, the HTML
renderings, the report), which should stay at or below 1.5.

Usage:
    python -m tools.run_all.bench                  # tiny profile, every notebook, JOBS=1
    python -m tools.run_all.bench --notebooks 02 03 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import cli as run_all


def notebook_script(source: Path, parameters: dict) -> str:
    """The notebook's code with ``parameters`` injected, as one Python script (what the kernel would run)."""
    from nbconvert import PythonExporter
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(source)), parameters)
    script, _ = PythonExporter().from_notebook_node(nb)
    return script


def time_scripts(sources: dict[str, Path], parameters: dict[str, dict], profile: str, scratch: Path) -> dict:
    """Run each notebook as a plain IPython script, one after another; seconds per notebook."""
    seconds = {}
    for stem, source in sources.items():
        params = {**parameters[stem], "profile": profile, "output_dir": str(scratch / "images" / stem)}
        script = scratch / f"{stem}.py"
        script.write_text(notebook_script(source, params), encoding="utf-8")
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=NoColor", str(script)],
            cwd=source.parent,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds[stem] = time.perf_counter() - start
    return seconds


def time_run_all(run_all_args: list[str], runs_dir: Path) -> tuple[float, dict]:
    """``python -m tools.run_all`` as a user starts it; its wall time and its summary."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tools.run_all", *run_all_args], stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, json.loads((runs_dir / "latest" / "summary.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run_all.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--notebooks", nargs="+", metavar="NB")
    parser.add_argument("--jobs", type=int, default=1, help="run-all's JOBS (the scripts always run one by one)")
    parser.add_argument("--notebooks-dir", type=Path, default=run_all.ROOT / "notebooks")
    parser.add_argument("--runs-dir", type=Path, default=run_all.ROOT / "runs")
    args = parser.parse_args(argv)

    run_all_args = ["--profile", args.profile, "--jobs", str(args.jobs), "--runs-dir", str(args.runs_dir)]
    run_all_args += [
        "--notebooks-dir",
        str(args.notebooks_dir),
        *(["--notebooks", *args.notebooks] if args.notebooks else []),
    ]
    profile, sources, parameters = run_all.plan_new_run(run_all.parse_args(run_all_args))
    with tempfile.TemporaryDirectory(prefix="bench-run-all-") as scratch:
        scripts = time_scripts(sources, parameters, profile.name, Path(scratch))
    run_all_seconds, summary = time_run_all(run_all_args, args.runs_dir)

    print(f"{'notebook':<28}{'script s':>10}{'in run-all s':>14}")
    for row in summary["notebooks"]:
        print(f"{row['notebook']:<28}{scripts[row['notebook']]:>10.1f}{row['seconds'] or 0:>14.1f}")
    total = sum(scripts.values())
    ratio = run_all_seconds / total
    print(f"{'total':<28}{total:>10.1f}{run_all_seconds:>14.1f}  (run-all: whole process, JOBS={args.jobs})")
    print(f"run-all / plain scripts = {ratio:.2f}x  (target <= 1.5x); run: {summary['run']}")
    return 0 if summary["complete"] and not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
