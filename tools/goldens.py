"""Regenerate the nbval references ("goldens"): run each notebook on the tiny profile, keep what nbval checks.

    python -m tools.goldens [notebooks/NN_name.ipynb | NN ...]     (``make golden`` runs every notebook)

A golden is its notebook's code, executed: every code cell keeps its execution count and its tags, and only the
cells tagged ``nbval-check-output`` (in the cell's metadata, where nbval reads it, so the learner's code carries no
marker) keep an output, what they print. With ``--nbval-lax`` nbval compares only those cells. Those prints must
be facts that hold on every profile (class names, sorted lists, counts, grid shapes, config values), so that the
same goldens pass on a GPU runner (``make test-gpu``); this script refuses a checked output that looks like a
timing, a memory size, a path, a device or the tiny-model banner. Pictures, tables and timings change from run to
run and are left out, so a regenerated golden differs from the committed one only where a checked fact changed.

A notebook named in :data:`PARAMETERS` runs with those papermill parameters (its golden keeps papermill's
``injected-parameters`` cell, which nbval runs too): lesson 08 trains for a few steps instead of its CPU default's
sixty, since the golden checks that the code runs and what it prints, not how much the model learns. The lesson's
own defaults still run in ``make run-all``, the Colab simulation and the UI check.

It exits with status 1, naming the notebook and the cell, if a notebook fails, a checked output is unstable, or
the executed notebook shows a reader something wrong (:mod:`tools.output_check`: a chart as text, a
progress bar saved at 0%, a path into site-packages).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tools import ROOT
from tools.common import select_notebooks

NOTEBOOKS = ROOT / "notebooks"
GOLDENS = ROOT / "tests" / "goldens"
# The cell tag that makes nbval --nbval-lax compare a cell's output (nbval 0.11 also reads the comment
# "# NBVAL_CHECK_OUTPUT"; the notebooks use the tag, which keeps the learner's code clean).
CHECK = "nbval-check-output"

# What must never appear in a checked output, because it differs between runs or between profiles.
UNSTABLE = {
    "a timing": re.compile(r"\b\d+(\.\d+)?\s?(s|ms|sec|seconds|it/s|s/it)\b"),
    "a memory size": re.compile(r"\b\d[\d,.]*\s?(B|KiB|MiB|GiB|KB|MB|GB)\b"),
    "a path": re.compile(r"(?<![\w.])(/[\w.-]+){2,}"),
    "a device": re.compile(r"\b(cpu|cuda|mps)\b"),
    "the tiny-model banner": re.compile(r"TINY TEST MODEL"),
    "an object address": re.compile(r" at 0x[0-9a-fA-F]+"),
}


# Papermill parameters of a notebook's golden run, where its defaults would make `make test` slow.
PARAMETERS = {"08_train_your_own": {"train_steps": 10, "pictures": 128, "finetune_steps": 3}}


def is_checked(cell) -> bool:
    """Whether nbval compares this cell's output: a code cell tagged ``nbval-check-output``."""
    return cell.cell_type == "code" and CHECK in cell.metadata.get("tags", [])


def problems_in_checked_output(cell) -> list[str]:
    """Why a checked cell's outputs cannot serve as a reference on every profile (empty: they can)."""
    problems = []
    if not cell.outputs:
        problems.append("prints nothing: a checked cell must print the facts it checks")
    for output in cell.outputs:
        if output.output_type != "stream" or output.name != "stdout":
            problems.append(f"has a {output.output_type} output: checked cells may only print(), not display")
            continue
        for what, pattern in UNSTABLE.items():
            found = pattern.search(output.text)
            if found:
                problems.append(f"prints {what} ({found.group(0)!r}), which differs between runs or profiles")
    return problems


def to_golden(executed):
    """Keep the code, the execution counts, the tags and the stdout of checked cells; drop everything else."""
    golden = executed
    kept = ("kernelspec", "language_info")
    golden.metadata = {key: value for key, value in executed.metadata.items() if key in kept}
    golden.metadata.get("language_info", {}).pop("version", None)
    for cell in golden.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if "injected-parameters" in (tags or []):
            cell.id = "injected-parameters"  # papermill's is random: a regenerated golden would differ by it alone
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            # One stdout output, however the kernel happened to split its prints into messages.
            text = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []
        else:
            cell.outputs = []
    return golden


def make_golden(notebook: Path) -> list[str]:
    """Execute ``notebook`` on the tiny profile and write its golden; return the problems found (empty: done)."""
    import papermill

    from tools.output_check import output_problems

    with tempfile.TemporaryDirectory() as scratch:
        executed_path = Path(scratch) / notebook.name
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed_path),
                kernel_name="python3",
                cwd=str(NOTEBOOKS),
                parameters=PARAMETERS.get(notebook.stem, {}),
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as err:
            return [f"cell {err.cell_index} (In [{err.exec_count}]) failed: {err.ename}: {err.evalue}"]
        executed = nbformat.read(executed_path, as_version=4)
    # What a reader of the executed notebook would see wrong (a chart as text, a bar at 0%, a package path).
    problems = output_problems(executed)
    for index, cell in enumerate(executed.cells):
        if is_checked(cell):
            unstable = problems_in_checked_output(cell)
            problems += [f"cell {index} (In [{cell.execution_count}]) {why}" for why in unstable]
            # A checked cell's stderr (progress bars, warnings) is kept out of the reference, as nbval ignores it.
    if problems:
        return problems
    nbformat.write(to_golden(executed), GOLDENS / notebook.name)
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.goldens", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks", nargs="*", metavar="NOTEBOOK",
        help="notebooks by path, number or name, e.g. notebooks/07_making_it_fast.ipynb or 07 (default: all)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    everything = sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
    if not everything:
        print(f"no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    try:
        notebooks = select_notebooks(everything, args.notebooks, where="NOTEBOOK")
    except ValueError as error:
        parser.error(str(error))
    # Goldens are always made on the tiny profile, offline, whatever the caller's environment says.
    os.environ.update({"SD_PROFILE": "tiny", "HF_HUB_OFFLINE": "1"})
    failed = 0
    for notebook in notebooks:
        start = time.perf_counter()
        problems = make_golden(notebook)
        took = time.perf_counter() - start
        if problems:
            failed += 1
            print(f"FAILED {notebook.name} after {took:.1f} s:", *problems, sep="\n  ", file=sys.stderr)
        else:
            print(f"wrote tests/goldens/{notebook.name} ({took:.1f} s)")
    if failed:
        print(f"{failed} of {len(notebooks)} goldens not written; the old ones are unchanged", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
