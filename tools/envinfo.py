"""What a run ran on: Python, the pinned packages, the device and its driver, the profile, the git commit.

Example:
    >>> record = environment_record("tiny")
    >>> sorted(record)[:3]
    ['cpu', 'cuda', 'device']
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tools import ROOT

# The packages whose versions matter; requirements-dev.txt adds any other pin when it is present.
PACKAGES = ("torch", "diffusers", "transformers", "accelerate", "safetensors", "huggingface_hub", "papermill")


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    """The stripped stdout of ``cmd``, or None if it is missing or fails."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def pinned_packages(requirements: Path = ROOT / "requirements-dev.txt") -> list[str]:
    """Package names pinned in a requirements file (following ``-r``), else :data:`PACKAGES`."""
    names: list[str] = list(PACKAGES)
    if not requirements.exists():
        return names
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names += pinned_packages(requirements.parent / line[3:].strip())
        elif line:
            names.append(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0])
    return list(dict.fromkeys(names))


def package_versions(names: list[str]) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def cpu_name() -> str:
    """The CPU's model name (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cuda_record() -> dict:
    """CUDA as torch sees it, and the driver as nvidia-smi reports it (when present)."""
    import torch

    record = {"available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda, "devices": []}
    if record["available"]:
        record["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    record["nvidia_smi"] = _run(
        ["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader"]
    )
    return record


def git_commit(root: Path = ROOT) -> dict:
    """The repository's commit and whether the working tree had changes (None outside a git checkout)."""
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root))}


def environment_record(profile: str) -> dict:
    """Everything worth knowing to compare one run with another, as a JSON-ready dict."""
    from helpers.profiles import PROFILES, describe_device

    device = PROFILES[profile].device if profile in PROFILES else "cpu"
    import psutil

    return {
        "profile": profile,
        "device": describe_device(device),
        "cpu": {
            "name": cpu_name(),
            "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "cuda": cuda_record(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(pinned_packages()),
        "git": git_commit(),
    }
