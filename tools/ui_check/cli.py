"""The whole UI check (``python -m tools.ui_check``): which notebooks, in which order, what counts as a notebook
run well, and the summary.

The playground runs first and alone, so that its timing is a learner's; then the lessons, ``--jobs`` at a time,
the longest first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from tools import ROOT

from ..browser_check import find_browser, install_chromium
from ..common import select_notebooks
from ..output_check import output_problems
from ..run_all.state import longest_first, previous_seconds
from .bounds import NOTEBOOK, STEP, TOTAL, CheckFailed, Deadline
from .lab import Lab
from .page import IMAGES_JS, NotebookPage
from .playground import PLAYGROUND, drive_playground


@dataclass
class Result:
    """One notebook's check: what its saved file held, what the browser showed, its problems and its timings."""

    notebook: str
    ok: bool = False
    seconds: float = 0.0
    code_cells: int = 0
    images: int = 0
    shown: int = 0
    screenshot: str = ""
    problems: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


def check_saved(nb, result: Result, shown: list[bool]) -> None:
    """What the saved notebook holds: every code cell run, no error, its pictures, all shown by the browser, and
    nothing a reader would see wrong (:mod:`tools.output_check`)."""
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    result.code_cells = len(cells)
    outputs = [output for cell in cells for output in cell.get("outputs", [])]
    result.images = sum("image/png" in output.get("data", {}) for output in outputs)
    result.shown = sum(shown)
    not_run = [i for i, cell in enumerate(cells) if cell.execution_count is None]
    errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o.output_type == "error"]
    if not_run:
        result.problems.append(f"code cells {not_run} were not run")
    if errors:
        result.problems.append(f"errors: {errors}")
    if result.notebook != PLAYGROUND and result.images == 0:
        result.problems.append("no pictures or charts in the saved notebook")
    result.problems += output_problems(nb)  # what a reader of the saved notebook would see wrong
    if result.shown != len(shown) or len(shown) < result.images:
        result.problems.append(f"the browser showed {result.shown} of the notebook's {result.images} pictures")


def select(folder: Path, wanted: list[str] | None) -> list[Path]:
    """The notebooks in ``folder``, or those ``wanted`` names by number or name (``00``, ``02_text_to_image``)."""
    try:
        return select_notebooks(sorted(folder.glob("*.ipynb")), wanted)
    except ValueError as err:
        raise SystemExit(f"ui_check: {err}") from None


def last_seconds(out: Path, runs: Path = ROOT / "runs") -> dict[str, float]:
    """How long each notebook took last time: Run All in the newest UI check under ``out``, else the newest complete
    tiny run of ``make run-all`` (``make test-browser`` makes one just before CI's ``make test-ui``); empty if none."""
    for summary in sorted(out.glob("*/summary.json"), reverse=True):
        try:
            notebooks = json.loads(summary.read_text(encoding="utf-8"))["notebooks"]
        except (OSError, ValueError, KeyError):
            continue
        seconds = {nb["notebook"]: nb["figures"]["run_all_s"] for nb in notebooks if nb["figures"].get("run_all_s")}
        if seconds:
            return seconds
    return previous_seconds(runs, "tiny")


def check_order(notebooks: list[Path], seconds: dict[str, float]) -> list[Path]:
    """The playground first (it runs alone, so its timing is a learner's), then the lessons longest first, so that
    the parallel jobs end close together (unknown ones count as longest).

    Example:
        >>> [p.name for p in check_order([Path("00_playground"), Path("01"), Path("05")], {"01": 9.0, "05": 60.0})]
        ['00_playground', '05', '01']
    """
    by_stem = {p.stem: p for p in notebooks}
    lessons = longest_first([p.stem for p in notebooks if p.stem != PLAYGROUND], seconds)
    return [by_stem[PLAYGROUND]] * (PLAYGROUND in by_stem) + [by_stem[stem] for stem in lessons]


def check_notebook(nb: NotebookPage, out: Path, result: Result) -> None:
    """After its Run All: save, read back, check, screenshot; the playground gets its clicks first."""
    if result.notebook == PLAYGROUND:
        drive_playground(nb, out, result)
    result.figures["kernel_cpu_s"] = nb.lab.kernel_cpu_seconds(nb.relative)
    saved = nb.save()
    result.seconds = round(time.perf_counter() - nb.started, 1)
    result.figures["open_s"] = round(nb.opened - nb.started, 1)  # page loaded and kernel idle
    shown = nb.page.evaluate(IMAGES_JS)
    check_saved(saved, result, shown)
    last = nb.page.locator(".jp-Notebook .jp-OutputArea-output img").last if shown else None
    result.screenshot = nb.screenshot(out, result.notebook, last)
    result.ok = not result.problems


def close(nb: NotebookPage | None, out: Path, result: Result, free_pages: list) -> None:
    """Shut down a notebook's kernel and close its tab, keeping the page for the next notebook if all went well.

    A failed notebook gets a screenshot first, and its page is closed (it may hold a dialog or a stuck cell).
    """
    if nb is None:
        return
    try:
        if result.problems and not result.screenshot:
            result.screenshot = nb.screenshot(out, f"{result.notebook}-failed", bound=10)
        nb.close(keep_page=not result.problems)
        if not result.problems:
            free_pages.append(nb.page)
    except Exception as err:  # noqa: BLE001 - the page or the kernel may already be gone
        print(f"  {result.notebook}: could not close cleanly: {type(err).__name__}", flush=True)


def run_checks(context, lab: Lab, notebooks: list[Path], out: Path, jobs: int, deadline: Deadline) -> list[Result]:
    """The notebooks in the order given (:func:`check_order`): the playground alone, then ``jobs`` at a time."""
    results = {p.stem: Result(p.stem) for p in sorted(notebooks)}  # reported in name order
    queue = list(notebooks)
    running: dict[str, NotebookPage] = {}
    free_pages: list = []  # JupyterLab pages whose last notebook is done, ready for the next

    def fail(stem: str, err: Exception) -> None:
        results[stem].problems.append(f"{type(err).__name__}: {str(err).splitlines()[0]}")
        print(f"  {stem}: FAILED: {results[stem].problems[-1]}", flush=True)

    while queue or running:
        limit = 1 if (queue and queue[0].stem == PLAYGROUND) or PLAYGROUND in running else jobs
        while queue and len(running) < limit:
            path = queue.pop(0)
            print(f"  {path.stem}: Run All", flush=True)
            nb = None
            try:
                nb = NotebookPage(context, lab, path, deadline, free_pages.pop() if free_pages else None)
                nb.run_all()
                running[path.stem] = nb
            except Exception as err:  # noqa: BLE001 - one notebook's failure is reported, the others still run
                fail(path.stem, err)
                close(nb, out, results[path.stem], free_pages)
        for stem, nb in list(running.items()):
            try:
                if nb.state()["running"]:
                    deadline.left(NOTEBOOK)
                    if time.perf_counter() - nb.opened > NOTEBOOK:
                        raise CheckFailed(f"Run All did not finish within {NOTEBOOK} s")
                    continue
                results[stem].figures["run_all_s"] = round(time.perf_counter() - nb.opened, 1)
                check_notebook(nb, out, results[stem])
                r = results[stem]
                extra = f", Generate to picture {r.figures['click_to_picture_s']} s" if stem == PLAYGROUND else ""
                times = f"open {r.figures['open_s']} s, Run All {r.figures['run_all_s']} s"
                print(f"  {stem}: {'ok' if r.ok else 'FAILED'} in {r.seconds} s ({times}), {r.images} pictures{extra}")
                for problem in r.problems:
                    print(f"    {problem}", flush=True)
            except Exception as err:  # noqa: BLE001
                fail(stem, err)
            running.pop(stem)
            close(nb, out, results[stem], free_pages)
        time.sleep(0.25)
    return list(results.values())


def cpu_seconds(lab: Lab) -> dict:
    """CPU time used by the browser, the JupyterLab server (with the kernels it reaped) and this tool.

    On a machine others are using, the wall times stretch; these say what the check itself cost. Their sum over
    the number of cores is the least wall time the check could take on that machine alone.
    """

    def used(process: psutil.Process, children: bool = False) -> float:
        times = process.cpu_times()
        return times.user + times.system + (times.children_user + times.children_system if children else 0)

    me = psutil.Process()
    browser = sum(used(p) for p in me.children(recursive=True) if "chrom" in p.name().lower())
    figures = {"browser_cpu_s": round(browser, 1), "tool_cpu_s": round(used(me), 1)}
    if lab.process is not None:
        server = psutil.Process(lab.process.pid)
        live = sum(used(p) for p in server.children(recursive=True))
        figures["lab_and_kernels_cpu_s"] = round(used(server, children=True) + live, 1)
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ui_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", metavar="NB", help="which notebooks: 00 02, or stems")
    parser.add_argument("--jobs", type=int, default=2, help="lessons at once (default 2; the playground runs alone)")
    parser.add_argument("--timeout", type=float, default=TOTAL, help=f"seconds for everything (default {TOTAL})")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "ui-check", help="default: build/ui-check/")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    deadline = Deadline(args.timeout)

    browser = find_browser()
    if browser is None:
        print("Chromium is missing: installing Debian's chromium package ...", flush=True)
        print(f"installed in {install_chromium():.0f} s", flush=True)
        browser = find_browser()
    out = args.out / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    lab_folder = out / "lab"
    shutil.copytree(ROOT / "notebooks", lab_folder / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    notebooks = check_order(select(lab_folder / "notebooks", args.notebooks), last_seconds(args.out))
    jobs = max(1, args.jobs)
    lab = Lab(lab_folder, threads=max(1, (os.cpu_count() or 1) // jobs))

    from playwright.sync_api import sync_playwright

    figures: dict = {"browser": browser, "machine": f"{os.cpu_count()} cores"}
    try:
        figures["lab_start_s"] = round(lab.start(deadline), 1)
        print(f"JupyterLab at {lab.url} in {figures['lab_start_s']} s; {browser}; output in {out}", flush=True)
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=browser,
                headless=not args.headed,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                timeout=deadline.ms(STEP),
            )
            context = launched.new_context(viewport={"width": 1280, "height": 1400})
            results = run_checks(context, lab, notebooks, out, jobs, deadline)
            figures.update(cpu_seconds(lab))
            launched.close()
    except CheckFailed as err:
        print(f"ui check: {err}", file=sys.stderr)
        return 1
    finally:
        lab.stop()
    figures["total_s"] = round(time.perf_counter() - start, 1)
    report = {"figures": figures, "notebooks": [asdict(r) for r in results]}
    (out / "summary.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    failed = [r.notebook for r in results if not r.ok]
    print(
        f"ui check: {len(results) - len(failed)} of {len(results)} notebooks ok in {figures['total_s']} s; "
        f"screenshots and summary.json in {out}"
    )
    if failed:
        print(f"ui check: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
