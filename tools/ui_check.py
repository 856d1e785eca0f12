"""Click through the notebooks in JupyterLab, in a real browser: the playground, then every lesson top to bottom.

It copies ``notebooks/`` into a fresh folder, starts JupyterLab there (a free port, a random token, settings of its
own, the tiny profile, offline) and drives Debian's ``chromium`` with Playwright (from PyPI; its own browser
download is not used). In the playground it runs all cells, types a prompt, clicks Generate and times the picture,
clicks Save and checks the file and its metadata on disk, tries a bad value, and restores settings from the
history. Each lesson gets Run > Run All Cells and a save (Ctrl+S); the saved notebook must have every code cell
run, no error, and its pictures and charts, and the browser must have shown every one of them. Every wait is
bounded; a screenshot of each notebook lands in the output folder.

Usage:
    python -m tools.ui_check                      # everything (make test-ui)
    python -m tools.ui_check --notebooks 00 02    # some notebooks
    python -m tools.ui_check --headed             # watch it (needs a display)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import psutil

from tools import ROOT

from .browser_check import find_browser, install_chromium
from .output_check import output_problems
from .run_all.state import longest_first, previous_seconds

PLAYGROUND = "00_playground"
PROMPT = "a red fox in the snow, ui check"
# Bounds, in seconds. A lesson on the tiny profile runs in 5 to 25 s here; a playground picture in about one.
LAB_START = 60
STEP = 30  # any one click, page load or element to appear
KERNEL_START = 90  # opening a notebook until its kernel is idle (about 20 s here while the machine was busy)
NOTEBOOK = 300  # one notebook's Run All (05, the longest, took 20 s on an idle machine, over 180 s on a busy one)
PICTURE = 60  # Generate to picture
TOTAL = 900  # the whole check: about 2 minutes on an idle 2-core machine, over 10 while others loaded it 6x
# JupyterLab settings: no news or update pop-ups over the page, no kernel dialog, and every cell in the page (no
# windowing), so that the checks see all of a notebook's outputs.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,  # start the notebook's kernel without a "Select Kernel" dialog
    },
}
RUN_STATE_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(p => p.innerText);
    return {running: prompts.filter(p => p.includes('*')).length, cells: prompts.length,
            done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length};
}"""
KERNEL_IDLE_JS = """() => [...document.querySelectorAll('.jp-StatusBar-Item')]
    .some(item => /^(?!No Kernel).+ \\| Idle$/.test(item.innerText.trim()))"""
MESSAGES_JS = """() => [...document.querySelectorAll('.widget-html')].map(h => h.innerText)
    .filter(text => /^(Made|Not |Saved|Nothing|Restored|Generating)/.test(text))"""
IMAGES_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')]
    .map(img => img.complete && img.naturalWidth > 0)"""


class CheckFailed(RuntimeError):
    """What a learner would have seen go wrong, in words."""


@dataclass
class Result:
    notebook: str
    ok: bool = False
    seconds: float = 0.0
    code_cells: int = 0
    images: int = 0
    shown: int = 0
    screenshot: str = ""
    problems: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


class Deadline:
    """The time left for the whole check; every wait takes the smaller of its own bound and this."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self, bound: float) -> float:
        left = min(bound, self.end - time.monotonic())
        if left <= 0:
            raise CheckFailed("the check ran out of time (--timeout)")
        return left

    def ms(self, bound: float) -> float:
        return self.left(bound) * 1000


# JupyterLab ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server on a free port with a random token, its settings and state kept in ``folder``."""

    def __init__(self, folder: Path, threads: int):
        self.folder, self.port, self.token = folder, free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        state = folder / ".jupyter"
        for name, values in LAB_SETTINGS.items():
            path = state / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        self.env = {
            **os.environ,
            "SD_PROFILE": "tiny",
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": str(threads),  # each kernel its share of the cores (see the Makefile's THREADS)
            "JUPYTER_CONFIG_DIR": str(state / "config"),
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        }
        self.env.pop("MPLBACKEND", None)  # the kernels show charts inline, as for a learner
        self.log = folder / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    def start(self, deadline: Deadline) -> float:
        """Start the server and wait until it answers; returns the seconds it took."""
        start = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.folder}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI runners often run as root
        with open(self.log, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + deadline.left(LAB_START)
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise CheckFailed(f"JupyterLab exited with {self.process.returncode}; see {self.log}")
            try:
                self.api("GET", "/api/status")
                return time.perf_counter() - start
            except OSError:
                time.sleep(0.25)
        raise CheckFailed(f"JupyterLab did not answer within {LAB_START} s; see {self.log}")

    def api(self, method: str, path: str):
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_cpu_seconds(self, notebook_path: str) -> float | None:
        """The CPU time (user + system) a notebook's kernel has used so far; None if it cannot be found."""
        ids = [s["kernel"]["id"] for s in self.api("GET", "/api/sessions") if s["path"] == notebook_path]
        if not ids or self.process is None:
            return None
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if any(f"kernel-{ids[0]}" in arg for arg in child.cmdline()):
                    times = child.cpu_times()
                    return round(times.user + times.system, 2)
            except psutil.Error:
                continue
        return None

    def shut_down_kernel(self, notebook_path: str) -> None:
        """Free the memory of a notebook's kernel once it is checked (kernels outlive their browser tabs)."""
        for session in self.api("GET", "/api/sessions"):
            if session["path"] == notebook_path:
                self.api("DELETE", f"/api/kernels/{session['kernel']['id']}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


# One notebook in the browser ---------------------------------------------------------------------------------


class NotebookPage:
    """A notebook open in a JupyterLab page, driven through the menus and the keyboard.

    The first notebook of a page loads JupyterLab with it (a workspace of its own, reset, so that no earlier tab
    comes back); the next ones open in the same page through File > Open from Path..., as a learner would, which
    spares loading JupyterLab again (10 to 20 s of the browser's time on two busy cores).
    """

    def __init__(self, context, lab: Lab, path: Path, deadline: Deadline, page=None):
        self.lab, self.path, self.deadline = lab, path, deadline
        self.relative = path.relative_to(lab.folder).as_posix()
        self.started = time.perf_counter()
        if page is None:
            self.page = context.new_page()
            self.page.echoes = Echoes()  # the widget values the kernel has applied (see type_into)
            self.page.on("websocket", lambda ws: ws.on("framereceived", self.page.echoes.frame))
            url = f"{lab.url}/lab/workspaces/{path.stem}/tree/{self.relative}?reset&token={lab.token}"
            self.page.goto(url, timeout=deadline.ms(STEP))
        else:
            self.page = page
            self.menu("File", "Open from Path…")
            dialog = self.page.locator(".jp-Dialog input")
            dialog.fill(self.relative, timeout=deadline.ms(STEP))
            dialog.press("Enter", timeout=deadline.ms(STEP))
        self.page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=deadline.ms(STEP))
        # The status bar reads "Python 3 (ipykernel) | Idle" once the kernel is up and connected (before, the
        # execution indicator already says idle, and Run All would ask which kernel to start).
        self.page.wait_for_function(KERNEL_IDLE_JS, timeout=deadline.ms(KERNEL_START), polling=250)
        if page is None:  # fold the file browser away once JupyterLab is ready: more room for the notebook
            self.page.keyboard.press("Control+b")
        self.opened = time.perf_counter()

    def menu(self, menu: str, item: str) -> None:
        """Click ``menu`` in the menu bar, then ``item`` in it, as a learner would."""
        for selector, text in ((".lm-MenuBar-itemLabel", menu), (".lm-Menu-itemLabel", item)):
            entry = self.page.locator(selector, has_text=re.compile(f"^{re.escape(text)}$"))
            entry.click(timeout=self.deadline.ms(STEP))

    def run_all(self) -> None:
        """Run > Run All Cells, then wait until no cell is running (the last one done, or an error stopped it)."""
        self.menu("Run", "Run All Cells")
        try:
            self.page.wait_for_function(f"() => ({RUN_STATE_JS})().running > 0", timeout=self.deadline.ms(STEP))
        except Exception as err:
            raise CheckFailed(f"Run > Run All Cells started no cell within {STEP} s: {self.state()}") from err

    def state(self) -> dict:
        return self.page.evaluate(RUN_STATE_JS)

    def wait_until_run(self, bound: float = NOTEBOOK) -> None:
        self.page.wait_for_function(
            f"() => ({RUN_STATE_JS})().running === 0", timeout=self.deadline.ms(bound), polling=250
        )

    def save(self) -> nbformat.NotebookNode:
        """Ctrl+S, then read the notebook back from disk once it changed."""
        before = self.path.stat().st_mtime_ns
        self.page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5}, timeout=self.deadline.ms(STEP))
        self.page.keyboard.press("Control+s")
        end = time.monotonic() + self.deadline.left(STEP)
        while time.monotonic() < end:
            if self.path.stat().st_mtime_ns != before:
                try:
                    return nbformat.read(self.path, as_version=4)
                except (ValueError, json.JSONDecodeError):  # caught mid-write: read again
                    pass
            time.sleep(0.2)
        raise CheckFailed(f"{self.path.name} was not saved within {STEP} s of Ctrl+S")

    def screenshot(self, folder: Path, name: str, element=None, bound: float | None = None) -> str:
        """Save a screenshot of the page (scrolled to ``element``); ``bound`` in seconds ignores the deadline."""
        timeout = self.deadline.ms(STEP) if bound is None else bound * 1000
        if element is not None:
            element.scroll_into_view_if_needed(timeout=timeout)
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path), timeout=timeout)
        return str(path)

    def close(self, keep_page: bool) -> None:
        """Shut down the kernel; close the notebook's tab (``keep_page``, for the next notebook) or the page."""
        try:
            self.lab.shut_down_kernel(self.relative)
            if keep_page:
                self.menu("File", "Close Tab")
                self.page.locator(".jp-Notebook").wait_for(state="detached", timeout=self.deadline.ms(STEP))
        except Exception:
            self.page.close(run_before_unload=False)
            raise
        if not keep_page:
            self.page.close(run_before_unload=False)


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


# The playground --------------------------------------------------------------------------------------------


class Echoes:
    """The values ipywidgets 8 echoes back once the kernel has applied a change made in the browser.

    A value typed into a widget travels to the kernel as an ``update`` message; ipykernel 7 may handle a button
    click sent a few milliseconds later before it (it dispatches comm messages concurrently while it is busy with
    another message), so Generate would use the old value. A learner is never that fast; the check waits for the
    kernel's ``echo_update`` of the value before it clicks.
    """

    def __init__(self):
        self.values: list = []

    def frame(self, payload) -> None:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        if '"echo_update"' in text:
            self.values += [json.loads(v) for v in re.findall(r'"value":\s*("(?:[^"\\]|\\.)*"|-?[\d.]+)', text)]

    def seen(self, value) -> bool:
        return value in self.values


def type_into(nb: NotebookPage, field, value) -> None:
    """Type ``value`` into a widget, leave it (Tab), and wait until the kernel has applied it."""
    nb.page.echoes.values.clear()
    field.fill(str(value), timeout=nb.deadline.ms(STEP))
    field.press("Tab", timeout=nb.deadline.ms(STEP))
    end = time.monotonic() + nb.deadline.left(STEP)
    while not nb.page.echoes.seen(value):
        if time.monotonic() > end:
            raise CheckFailed(f"the kernel did not take {value!r} from the browser within {STEP} s")
        nb.page.wait_for_timeout(50)


def widget_with_label(page, kind: str, label: str):
    return page.locator(f".widget-{kind}", has=page.locator("label", has_text=re.compile(f"^{label}$"))).locator(
        "input, textarea"
    )


def click_button(nb: NotebookPage, text: str) -> None:
    nb.page.locator(".widget-button", has_text=re.compile(f"^{text}$")).first.click(timeout=nb.deadline.ms(STEP))


def wait_for_message(nb: NotebookPage, start: str, bound: float = STEP) -> str:
    """Wait until the playground's message starts with ``start``; return it (or say what it says instead)."""
    status = nb.page.locator(".widget-html", has_text=re.compile(f"^{re.escape(start)}")).first
    try:
        status.wait_for(timeout=nb.deadline.ms(bound))
    except Exception as err:
        said = nb.page.evaluate(MESSAGES_JS)
        raise CheckFailed(f"the playground did not say {start!r} within {bound} s; it says {said}") from err
    return status.inner_text()


def drive_playground(nb: NotebookPage, out: Path, result: Result) -> None:
    """Type a prompt, Generate (timed), Save (checked on disk), a bad value, then restore from the history."""
    from helpers import read_metadata

    page, deadline = nb.page, nb.deadline
    prompt = widget_with_label(page, "textarea", "Prompt")
    type_into(nb, prompt, PROMPT)
    picture = page.locator("img.widget-image").first
    cpu_before = nb.lab.kernel_cpu_seconds(nb.relative)
    start = time.perf_counter()
    click_button(nb, "Generate")
    page.wait_for_function(
        """([prompt]) => [...document.querySelectorAll('.widget-html')].some(h => h.innerText.startsWith(prompt))
            && [...document.querySelectorAll('img.widget-image')].some(i => i.complete && i.naturalWidth > 0)""",
        arg=[PROMPT],
        timeout=deadline.ms(PICTURE),
        polling="raf",
    )
    result.figures["click_to_picture_s"] = round(time.perf_counter() - start, 2)
    cpu_after = nb.lab.kernel_cpu_seconds(nb.relative)
    if cpu_before is not None and cpu_after is not None:  # what the picture cost the kernel, however busy the machine
        result.figures["click_kernel_cpu_s"] = round(cpu_after - cpu_before, 2)
    result.figures["generate_message"] = nb.page.evaluate(MESSAGES_JS)
    result.figures["picture_px"] = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    nb.screenshot(out, f"{PLAYGROUND}-1-generated", picture)

    click_button(nb, "Save")
    message = wait_for_message(nb, "Saved 1 picture(s)")
    saved = nb.path.parent / "playground-pictures" / "a-red-fox-in-the-snow-ui-check-0000.png"
    if not saved.is_file():
        raise CheckFailed(f"Save said {message!r} but {saved} is not there")
    meta = read_metadata(saved)
    if (meta.get("prompt"), meta.get("seed"), meta.get("notebook")) != (PROMPT, "0", PLAYGROUND):
        raise CheckFailed(f"{saved.name} has the wrong metadata: {meta}")
    result.figures["saved"] = str(saved)

    steps = widget_with_label(page, "text", "Steps")
    type_into(nb, steps, 0)
    click_button(nb, "Generate")
    result.figures["bad_value_message"] = wait_for_message(nb, "Not generated: num_inference_steps must be")
    nb.screenshot(out, f"{PLAYGROUND}-2-bad-value", page.locator(".widget-button", has_text="Generate"))
    type_into(nb, steps, 10)

    click_button(nb, "random seed")
    seed = widget_with_label(page, "text", "Seed")
    page.wait_for_function(
        "el => el.value !== '0'", arg=seed.element_handle(timeout=deadline.ms(STEP)), timeout=deadline.ms(STEP)
    )
    click_button(nb, "Generate")
    wait_for_message(nb, "Made 1 picture(s)", PICTURE)
    history = page.locator(".widget-button", has_text=re.compile(r"^seed \d+$"))
    history.nth(1).wait_for(timeout=deadline.ms(STEP))
    type_into(nb, prompt, "something else")
    click_button(nb, "seed 0")  # the first picture's entry, now second in the history strip
    wait_for_message(nb, "Restored the settings of seed 0")
    restored = (prompt.input_value(), seed.input_value())
    if restored != (PROMPT, "0"):
        raise CheckFailed(f"the history restored prompt and seed {restored}, not {(PROMPT, '0')}")
    nb.screenshot(out, f"{PLAYGROUND}-3-restored", page.locator(".widget-button", has_text="Generate"))


# The whole check -------------------------------------------------------------------------------------------


def select(folder: Path, wanted: list[str] | None) -> list[Path]:
    notebooks = sorted(folder.glob("*.ipynb"))
    if wanted:
        notebooks = [p for p in notebooks if any(p.stem == w or p.stem.startswith(f"{w}_") for w in wanted)]
        if not notebooks:
            raise SystemExit(f"ui_check: --notebooks {' '.join(wanted)} matches none of {folder}/*.ipynb")
    return notebooks


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
