"""What every notebook's setup cell runs in Colab, once it has cloned this repository.

It installs only what the lessons need beyond Colab's own packages. The lessons' version ranges
(``[project] dependencies`` in pyproject.toml) admit Colab's versions wherever the lessons work with them, so pip
keeps those and adds the rest (on 2026-08-19: diffusers, a newer huggingface_hub, torchsde). If pip had to
replace a package that Colab's kernel had already imported, that kernel cannot go on (a new version on disk under
the old one in memory: ``matplotlib.ft2font`` import errors, a segfault in Pillow), so the setup cell restarts the
runtime and says why; run again, it finds everything in place and is quick and quiet. Last, it puts this
repository on ``sys.path`` so that ``from helpers import ...`` works in this kernel.

The cell runs this file with :func:`runpy.run_path` before the packages are installed: it uses the standard
library and ``packaging`` (which Colab has; pip's own copy otherwise), and never imports :mod:`helpers`, whose
``__init__`` imports diffusers.

Example (what the setup cell does, outside Colab it changes nothing that is already installed):
    >>> import runpy
    >>> runpy.run_path("helpers/colab_setup.py", run_name="__main__")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib.metadata import PackageNotFoundError, distributions, packages_distributions, version
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pragma: no cover - Colab has packaging; pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
# Printed when the runtime must restart; the Colab simulation (`make test-colab`) looks for it.
RESTART_MESSAGE = "Restarting the runtime"
# Quiet: no progress bars, no notice of a newer pip, no warning about running as root (Colab does).
PIP = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--root-user-action=ignore"]
PIP.append("--no-compile")  # Python compiles what it imports; compiling all of diffusers took longer than the rest


def lesson_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The version ranges the lessons are tested with, as pip takes them."""
    return list(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])


def unmet(requirements: list[str]) -> list[str]:
    """The requirements that what is installed does not satisfy (missing, or a version outside the range)."""
    missing = []
    for line in requirements:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            missing.append(line)
            continue
        if not req.specifier.contains(installed, prereleases=True):
            missing.append(line)
    return missing


def installed_versions() -> dict[str, str]:
    """Every installed distribution, by canonical name."""
    importlib.invalidate_caches()
    return {canonicalize_name(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}


def loaded_distributions(modules=None) -> dict[str, str]:
    """The distributions (canonical name: version) whose top-level modules this process has imported."""
    names = {name.partition(".")[0] for name in (sys.modules if modules is None else modules)}
    owners = packages_distributions()
    versions = installed_versions()
    loaded = {canonicalize_name(dist) for name in names for dist in owners.get(name, ())}
    return {name: versions[name] for name in sorted(loaded) if name in versions}


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What an install changed, one phrase each: ``diffusers 0.39.0 -> 0.42.1``, ``torchsde 0.2.6 (new)``."""
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        lines.append(
            f"{name} {new} (new)" if old is None else f"{name} removed" if new is None else f"{name} {old} -> {new}"
        )
    return lines


def replaced_while_loaded(loaded: dict[str, str], after: dict[str, str]) -> list[str]:
    """The imported distributions that the install replaced: this kernel still runs their old code."""
    return [f"{name} {old} -> {after.get(name, 'removed')}" for name, old in loaded.items() if after.get(name) != old]


def restart_runtime(replaced: list[str]) -> None:
    """Restart the kernel the way Colab's own notebooks do, and stop this cell so that no later cell runs first."""
    print(
        f"Colab had already loaded {', '.join(replaced)} before this cell replaced it, and a kernel cannot switch "
        f"versions of a loaded package. {RESTART_MESSAGE} now: when Colab says the session restarted, run this "
        "cell again (it takes seconds), then the rest of the notebook.",
        flush=True,
    )
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.kernel.do_shutdown(restart=True)  # the kernel exits; Colab starts a fresh one
    raise SystemExit(f"{RESTART_MESSAGE}; run this cell again.")


def install(requirements: list[str], keep: dict[str, str]) -> None:
    """pip-install the ranges, first holding the loaded distributions at their versions, then, if pip finds no
    way to do that, without holding them (the caller restarts the runtime)."""
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder, "loaded.txt")
        constraints.write_text("".join(f"{name}=={v}\n" for name, v in keep.items()), encoding="utf-8")
        held = subprocess.run([*PIP, "-c", str(constraints), *requirements], capture_output=True, text=True)
    if held.returncode == 0:
        sys.stdout.write(held.stdout)
        sys.stderr.write(held.stderr)
        return
    print("The lessons need newer versions of packages Colab has loaded; installing them.", flush=True)
    if subprocess.run([*PIP, *requirements]).returncode != 0:
        raise SystemExit("pip could not install the packages above (see its messages); run this cell again.")


def main(requirements: list[str] | None = None) -> list[str]:
    """Install what is missing, restart if a loaded package was replaced, put the repository on ``sys.path``.

    Returns what the install changed (empty when everything was already in place).
    """
    requirements = lesson_requirements() if requirements is None else requirements
    needed = unmet(requirements)
    changed: list[str] = []
    if needed:
        loaded = loaded_distributions()
        before = installed_versions()
        print(f"Installing what the lessons need beyond Colab's packages: {', '.join(needed)}", flush=True)
        start = time.monotonic()
        install(requirements, keep=loaded)
        after = installed_versions()
        changed = changes(before, after)
        print(f"Installed in {time.monotonic() - start:.0f} s: {'; '.join(changed) or 'nothing new'}.", flush=True)
        replaced = replaced_while_loaded(loaded, after)
        if replaced:
            restart_runtime(replaced)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return changed


if __name__ == "__main__":
    main()
