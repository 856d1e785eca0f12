"""The page driver of the UI check: a notebook open in JupyterLab in Chromium, driven as a learner would.

It opens a notebook (the first in a fresh page, the next through File > Open from Path...), waits for its kernel,
runs Run > Run All Cells, saves with Ctrl+S and reads the file back, takes screenshots, and listens to the
kernel's widget echoes (:class:`Echoes`), so that a value typed in the browser is applied before the next click.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat

from .bounds import KERNEL_START, NOTEBOOK, STEP, CheckFailed, Deadline
from .lab import Lab

RUN_STATE_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(p => p.innerText);
    return {running: prompts.filter(p => p.includes('*')).length, cells: prompts.length,
            done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length};
}"""
KERNEL_IDLE_JS = """() => [...document.querySelectorAll('.jp-StatusBar-Item')]
    .some(item => /^(?!No Kernel).+ \\| Idle$/.test(item.innerText.trim()))"""
IMAGES_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')]
    .map(img => img.complete && img.naturalWidth > 0)"""


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
