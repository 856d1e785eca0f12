"""One learner's first session in the simulated Colab: open a notebook, run its cells top to bottom in one kernel.

A session gets a fresh copy of the image (:mod:`.image`), a home whose git sends the repository's URL to a
local snapshot of this working tree (``url.<snapshot>.insteadOf``), an IPython startup that imports what Colab's
kernel has imported before the first cell, and Colab's working folder. The setup cell may ask for exactly one
restart (it prints :data:`helpers.colab_setup.RESTART_MESSAGE` and the kernel exits): the session then starts a
fresh kernel, as Colab does, runs the setup cell again, which must not ask again, and goes on. Anything else that
fails fails the session: a cell's error, a kernel that dies, pip's resolver conflicts with Colab's packages, a
new ``pip check`` problem, or a widget that Colab's frontend (ipywidgets 7.7.1's) cannot show.

Example:
    >>> result = run_session(Path("notebooks/01_load_model.ipynb"), image, work, snapshot)  # doctest: +SKIP
    >>> result.ok, result.restarts
    (True, 0)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbclient.util import run_sync

from helpers.colab_setup import RESTART_MESSAGE, changes

from .image import fresh_copy, pip_environment

# What Colab's kernel has imported before the first cell runs: google.colab, and what its display formatters and
# inline matplotlib backend load. Pillow and matplotlib are the ones a setup cell broke by upgrading them.
COLAB_PRELOADED = ("google.colab", "numpy", "PIL.Image", "matplotlib", "matplotlib.pyplot")
STARTUP = """\
# What Colab's kernel has imported before the first cell runs (make test-colab).
import importlib

for _name in {modules!r}:
    importlib.import_module(_name)
"""
# Not Colab's behaviour but the simulation's strictness: ipywidgets 7 only warns about an option it does not know
# (an ipywidgets 8 one), and the widget then silently lacks it. Here that fails the cell.
CHECKS = """\
# make test-colab: an ipywidgets 7 widget given an option it does not know fails, instead of only warning.
import warnings

warnings.filterwarnings("error", message="Passing unrecognized arguments to super", category=DeprecationWarning)
"""
# pip's words when what it installed conflicts with what was there.
PIP_CONFLICT = re.compile(r"dependency conflicts|which is incompatible|ResolutionImpossible", re.IGNORECASE)
WIDGET_MODULES = {
    "@jupyter-widgets/base": "base",
    "@jupyter-widgets/controls": "controls",
    "@jupyter-widgets/output": "output",
}
# Every installed distribution by canonical name, as helpers.colab_setup names them.
VERSIONS_SCRIPT = (
    "import importlib.metadata as m, json, re; "
    "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version for d in m.distributions()}))"
)
WIDGET_VERSIONS_SCRIPT = (
    "import json, ipywidgets._version as v; print(json.dumps({'ipywidgets': v.__version__, "
    "'base': v.__jupyter_widgets_base_version__, 'controls': v.__jupyter_widgets_controls_version__, "
    "'output': getattr(v, '__jupyter_widgets_output_version__', '1.0.0')}))"
)


@dataclass
class SessionResult:
    """What one session did and found."""

    notebook: str
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    restarts: int = 0
    setup_seconds: float | None = None  # the setup cell's first run, downloads included
    rerun_seconds: float | None = None  # the setup cell again, after the restart it asked for
    seconds: float = 0.0  # the whole session, kernel starts included
    changes: list[str] = field(default_factory=list)  # what the session changed in Colab's packages
    widgets: int = 0  # widget models the notebook created


@dataclass(frozen=True)
class Baseline:
    """What every session starts from, read once from the image: its packages, ``pip check``'s complaints
    (Colab's own, not the session's), and the widget versions Colab's frontend renders (its ipywidgets')."""

    versions: dict[str, str]
    pip_check: frozenset[str]
    frontend_widgets: dict[str, str]

    @classmethod
    def of(cls, image: Path) -> Baseline:
        env, venv = pip_environment(), image / "venv"
        return cls(
            python_json(venv, VERSIONS_SCRIPT, env),
            frozenset(pip_check(venv, env)),
            python_json(venv, WIDGET_VERSIONS_SCRIPT, env),
        )


def snapshot_repository(root: Path, dest: Path) -> str:
    """A git repository holding the working tree as it is now (tracked and untracked, not ignored): what Colab
    would clone if this were pushed. Returns its ``file://`` URL."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git = ["git", "-C", str(dest), "-c", "user.name=colab-sim", "-c", "user.email=colab-sim@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "working tree for make test-colab"], check=True)
    return dest.resolve().as_uri()


def python_json(venv: Path, script: str, env: dict[str, str]) -> dict:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, env=env)
    done.check_returncode()
    return json.loads(done.stdout)


def pip_check(venv: Path, env: dict[str, str]) -> set[str]:
    """``pip check``'s complaints (pip exits 1 when it has some)."""
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True, env=env)
    return {line for line in done.stdout.splitlines() if line.strip() and "No broken requirements" not in line}


def prepare_session(image: Path, folder: Path, repo_url: str, snapshot_url: str, preloaded) -> dict[str, str]:
    """Copy the image, write the home (git redirect, IPython startup), return the kernel's environment."""
    fresh_copy(image, folder)
    home, venv = folder / "home", folder / "venv"
    (folder / "content").mkdir()
    gitconfig = f'[url "{snapshot_url}"]\n\tinsteadOf = {repo_url}\n[advice]\n\tdetachedHead = false\n'
    (home / ".gitconfig").write_text(gitconfig, encoding="utf-8")
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(STARTUP.format(modules=tuple(preloaded)), encoding="utf-8")
    (startup / "99-checks.py").write_text(CHECKS, encoding="utf-8")
    kernels = folder / "kernels" / "colab"
    kernels.mkdir(parents=True)
    spec = {"argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    (kernels / "kernel.json").write_text(json.dumps({**spec, "display_name": "Colab", "language": "python"}))
    env = pip_environment()
    for key in [k for k in env if k.startswith(("SD_", "HF_", "MPL", "JUPYTER", "IPYTHON", "PYTHON"))]:
        del env[key]
    env.update(
        HOME=str(home),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        IPYTHONDIR=str(home / ".ipython"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",  # Colab's inline backend
        SD_PROFILE="tiny",  # the lessons on the tiny model: no GPU and no Hub here
        HF_HUB_OFFLINE="1",
        SD_TUTORIAL_CACHE=str(folder / "cache"),
        OMP_NUM_THREADS="1",  # on a shared CPU, PyTorch threads that outnumber free cores spin and crawl
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # debugpy's notice about frozen modules, on every kernel start
    )
    return env


def run_session(
    notebook: Path,
    image: Path,
    folder: Path,
    repo_url: str,
    snapshot_url: str,
    preloaded=COLAB_PRELOADED,
    baseline: Baseline | None = None,
    cell_timeout: int = 300,
    log=print,
) -> tuple[SessionResult, nbformat.NotebookNode]:
    """Run ``notebook`` as a learner's first session; returns the result and the executed notebook."""
    start = time.perf_counter()
    result = SessionResult(notebook.stem)
    baseline = baseline or Baseline.of(image)
    env = prepare_session(image, folder, repo_url, snapshot_url, preloaded)
    venv = folder / "venv"
    nb = nbformat.read(notebook, as_version=4)
    code = [index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    kernel_log = (folder / "kernel.log").open("ab")  # the kernels' own stdout and stderr
    try:
        for attempt in (1, 2):
            client = new_client(nb, folder, cell_timeout)
            with client.setup_kernel(env=env, stdout=kernel_log, stderr=kernel_log):
                restarted = run_setup(client, nb, code[0], result)
                if restarted and attempt == 1:
                    log(f"  {result.notebook}: the setup cell restarted the runtime; running it again")
                    continue
                if restarted:
                    result.problems.append("the setup cell asked for a second restart: after one it must go on")
                    break
                run_cells(client, nb, code[1:], result)
                break
    except _Stop:
        pass
    except DeadKernelError as error:  # between cells, or while the setup cell's kernel restarted
        result.problems.append(f"the kernel died: {summary(error)}")
    finally:
        kernel_log.close()
    if any("kernel died" in problem for problem in result.problems):
        result.problems.append(f"the kernel's last words: {tail(read_log(folder))}")
    result.seconds = time.perf_counter() - start
    result.changes = changes(baseline.versions, python_json(venv, VERSIONS_SCRIPT, env))
    result.problems += [f"pip check, new: {line}" for line in sorted(pip_check(venv, env) - baseline.pip_check)]
    result.widgets = len(client.widget_state)  # the last kernel's, the one the lesson ran in
    result.problems += widget_problems(client.widget_state, baseline.frontend_widgets)
    result.ok = not result.problems
    return result, nb


def new_client(nb, folder: Path, cell_timeout: int) -> NotebookClient:
    """A notebook client whose kernel is the session's Python, started in Colab's working folder."""
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    km = AsyncKernelManager(kernel_name="colab", kernel_spec_manager=specs)
    return NotebookClient(
        nb,
        km=km,
        timeout=cell_timeout,
        startup_timeout=120,
        resources={"metadata": {"path": str(folder / "content")}},
        store_widget_state=True,
    )


class _Stop(Exception):
    """A problem that ends the session early, already recorded."""


def run_setup(client: NotebookClient, nb, index: int, result: SessionResult) -> bool:
    """Run the setup cell; True when it asked for a restart and the kernel then exited."""
    cell = nb.cells[index]
    cell.outputs = []
    start = time.perf_counter()
    try:
        client.execute_cell(cell, index)
        failed = None
    except (CellExecutionError, DeadKernelError) as error:
        failed = error
    seconds = time.perf_counter() - start
    if result.setup_seconds is None:
        result.setup_seconds = seconds
    else:
        result.rerun_seconds = seconds
    text = output_text(cell)
    if PIP_CONFLICT.search(text):
        result.problems.append(f"pip reported conflicts with Colab's packages in the setup cell: {tail(text)}")
    if failed is None:
        if result.restarts and text.strip():
            result.problems.append(f"after the restart the setup cell must be quiet, and printed: {tail(text)}")
        return False
    if RESTART_MESSAGE not in text:
        result.problems.append(f"the setup cell failed: {summary(failed)}")
        raise _Stop
    if not wait_for_exit(client):
        result.problems.append("the setup cell asked for a restart but the kernel did not exit")
        raise _Stop
    result.restarts += 1
    return True


def run_cells(client: NotebookClient, nb, indices: list[int], result: SessionResult) -> None:
    """The cells after the setup, in order, stopping at the first error as Colab's *Run all* does."""
    for index in indices:
        try:
            client.execute_cell(nb.cells[index], index)
        except CellExecutionError as error:
            result.problems.append(f"cell {index} failed: {summary(error)}")
            raise _Stop from None
        except DeadKernelError:
            result.problems.append(f"cell {index}: the kernel died")
            raise _Stop from None


def wait_for_exit(client: NotebookClient, seconds: float = 30) -> bool:
    """Whether the kernel process ends within ``seconds`` (the restart the setup cell asked for)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not run_sync(client.km.is_alive)():
            return True
        time.sleep(0.2)
    return False


def read_log(folder: Path) -> str:
    return (folder / "kernel.log").read_text(encoding="utf-8", errors="replace")


def output_text(cell) -> str:
    """Everything a cell showed as text: streams, plain-text displays, errors."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return "".join(parts)


def tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def summary(error: Exception) -> str:
    """``ImportError: cannot import name ...`` for a cell's error; the message for a dead kernel."""
    if isinstance(error, CellExecutionError):
        return f"{error.ename}: {error.evalue}"
    return str(error).strip().splitlines()[0]


def widget_problems(widget_state: dict, frontend: dict[str, str]) -> list[str]:
    """Widgets that Colab's frontend, made for ipywidgets ``frontend["ipywidgets"]``, cannot show."""
    problems = set()
    for state in widget_state.values():
        for kind in ("model", "view"):
            module, version = state.get(f"_{kind}_module"), state.get(f"_{kind}_module_version")
            if not module:
                continue
            name = f"{state.get('_model_name', '?')} ({kind} {module} {version})"
            if module not in WIDGET_MODULES:
                problems.add(f"widget {name}: Colab's frontend has only ipywidgets' own widgets")
            elif version != frontend[WIDGET_MODULES[module]]:
                expected = frontend[WIDGET_MODULES[module]]
                problems.add(
                    f"widget {name}: Colab's frontend is ipywidgets {frontend['ipywidgets']}'s, {module} {expected}"
                )
    return sorted(problems)
