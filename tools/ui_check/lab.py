"""The JupyterLab server of the UI check: its own folder, a free port, a random token, settings of its own.

The kernels run the tiny profile, offline, each with its share of the cores; the check asks the server's API
which kernel belongs to which notebook, to read its CPU time and to shut it down once the notebook is checked.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from ..common import free_port
from .bounds import LAB_START, CheckFailed, Deadline

# JupyterLab settings: no news or update pop-ups over the page, no kernel dialog, and every cell in the page (no
# windowing), so that the checks see all of a notebook's outputs.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,  # start the notebook's kernel without a "Select Kernel" dialog
    },
}


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
