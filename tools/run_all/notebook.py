"""Execute one notebook with papermill, for run-all: in its own kernel, with its own environment and memory record.

Several notebooks run at once in threads of one process, so nothing here touches process-wide state: the
kernel's working folder is passed to nbclient (papermill's ``cwd=`` would ``chdir`` the whole process), and the
kernel's extra environment (``CUDA_VISIBLE_DEVICES`` for its GPU, where to write its peak memory) is given to the
kernel alone through a kernel manager made for this call. The kernel's own stderr goes to a log file.

Peak memory: the kernel records it itself at exit (see :mod:`tools.run_all.kernel_probe`): its peak
resident memory (``process RSS``) and, when it used CUDA, the peak GPU memory PyTorch allocated
(``GPU memory allocated``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ..common import NotebookResult
from . import kernel_probe
from .state import executed_notebook, images_dir, kernel_log, peak_file

PROBE_LINE = f"__import__('runpy').run_path({kernel_probe.__file__!r}, run_name='sd_tutorial_kernel_probe');"


def kernel_manager_class(extra_env: dict[str, str], stderr_path: Path, on_start: Callable[[int], None]):
    """A kernel manager class whose kernels get ``extra_env``, write stderr to ``stderr_path``, report their pid."""
    from jupyter_client import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw["env"] = {**kw.get("env", os.environ), **extra_env}
            with open(stderr_path, "ab") as log:
                kw.setdefault("stdout", log)  # the kernel's own prints (not the cells'), e.g. crash messages
                kw.setdefault("stderr", log)
                await super().start_kernel(**kw)
            on_start(self.provisioner.pid)

    return RunKernelManager


def read_peak(path: Path, device: str) -> tuple[int | None, str | None]:
    """(bytes, kind) from the kernel's record: the GPU figure for a CUDA profile if present, else process RSS."""
    try:
        peak = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, None  # the kernel was killed before it could write it
    if device == "cuda" and "cuda_peak_bytes" in peak:
        return peak["cuda_peak_bytes"], "GPU memory allocated"
    return peak.get("rss_peak_bytes"), "process RSS"


def describe_error(err: BaseException) -> dict:
    """The failing cell (index in the executed notebook, its ``In [n]`` and first lines) and the exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        lines = err.source.strip().splitlines()
        return {
            "cell_index": err.cell_index,
            "execution_count": err.exec_count,
            "source": "\n".join(lines[:3]) + (" ..." if len(lines) > 3 else ""),
            "ename": err.ename,
            "evalue": err.evalue,
        }
    return {"cell_index": None, "execution_count": None, "source": "", "ename": type(err).__name__, "evalue": str(err)}


def run_notebook(
    source: Path,
    folder: Path,
    stem: str,
    parameters: dict,
    *,
    device: str = "cpu",
    extra_env: dict[str, str] | None = None,
    cell_timeout: float | None = None,
    on_kernel_start: Callable[[int], None] = lambda pid: None,
    interrupted: Callable[[], bool] = lambda: False,
) -> NotebookResult:
    """Execute ``source`` into ``folder`` (see :mod:`tools.run_all.state` for where each file goes).

    Args:
        source: the notebook to run; its kernel runs in the notebook's own folder, as in JupyterLab.
        folder: the run folder.
        stem: the notebook's name in the run folder.
        parameters: passed to papermill, ``profile`` and ``output_dir`` included.
        device: the profile's device, to pick which memory figure to report.
        extra_env: more environment for the kernel, e.g. ``{"CUDA_VISIBLE_DEVICES": "1"}``.
        cell_timeout: seconds one cell may take; None waits forever.
        on_kernel_start: called with the kernel's pid (run-all stops kernels with it on Ctrl-C).
        interrupted: whether the run is being stopped, so that a killed kernel counts as interrupted, not failed.
    """
    import papermill

    output = executed_notebook(folder, stem)
    output.parent.mkdir(parents=True, exist_ok=True)
    kernel_log(folder, stem).parent.mkdir(parents=True, exist_ok=True)
    peak_path = peak_file(folder, stem)
    env = {**(extra_env or {}), kernel_probe.ENV_VAR: str(peak_path)}
    start = time.perf_counter()
    status, error = "ok", None
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            progress_bar=False,
            execution_timeout=cell_timeout,
            kernel_manager_class=kernel_manager_class(env, kernel_log(folder, stem), on_kernel_start),
            resources={"metadata": {"path": str(source.parent)}},  # the kernel's working folder
            extra_arguments=[f"--IPKernelApp.exec_lines=[{PROBE_LINE!r}]"],
        )
    except Exception as err:  # noqa: BLE001 - any failure of one notebook is recorded, and the others go on
        status, error = ("interrupted" if interrupted() else "failed"), describe_error(err)
    seconds = time.perf_counter() - start
    peak, kind = read_peak(peak_path, device)
    images = len(list(images_dir(folder, stem).glob("*.png")))
    return NotebookResult(stem, status, round(seconds, 2), peak, kind, images, error)


def stop_kernel(pid: int) -> None:
    """Kill a kernel and everything it started (it leads its own process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
