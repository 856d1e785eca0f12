"""The file every setup cell runs in Colab (helpers/colab_setup.py): install only what is missing, restart only
when a loaded package was replaced, never import helpers first. `make test-colab` runs it in a simulated Colab."""

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from helpers import colab_setup
from tools import ROOT
from tools.colab_sim.runtime import read_runtime
from tools.colab_sim.session import COLAB_PRELOADED

SETUP = ROOT / "helpers" / "colab_setup.py"


def test_it_imports_only_the_standard_library_and_packaging():
    """It runs before anything is installed: no helpers (their __init__ imports diffusers), no third party."""
    imported = set()
    for node in ast.walk(ast.parse(SETUP.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or "").split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"packaging", "pip", "IPython"}  # IPython: only to restart Colab's kernel
    assert imported <= allowed, f"colab_setup.py imports {sorted(imported - allowed)}"


def test_with_everything_installed_it_is_quiet_and_only_adds_the_repository_to_the_path(tmp_path):
    """Run as the setup cell runs it, where everything is installed (as after Colab's restart): no pip, no output,
    helpers importable, and nothing heavy imported."""
    code = (
        "import runpy, sys; sys.path = [p for p in sys.path if p != '']; "
        "runpy.run_path(sys.argv[1], run_name='__main__'); "
        "print(sys.argv[2] in sys.path, 'helpers' in sys.modules, 'diffusers' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(SETUP), str(ROOT)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True False False\n"
    assert done.stderr == ""


def test_unmet_finds_missing_and_out_of_range_packages_and_respects_markers():
    pytest_version = version("pytest")
    requirements = [
        f"pytest=={pytest_version}",
        "pytest<1",
        "no-such-package-for-this-test>=1",
        'also-not-there>=1; python_version < "3"',
    ]
    assert colab_setup.unmet(requirements) == ["pytest<1", "no-such-package-for-this-test>=1"]


def test_the_lesson_requirements_are_met_by_make_setup():
    assert colab_setup.unmet(colab_setup.lesson_requirements()) == []


def test_loaded_distributions_names_the_distributions_of_imported_modules():
    import PIL.Image  # noqa: F401
    import yaml  # noqa: F401

    loaded = colab_setup.loaded_distributions(["PIL.Image", "yaml", "not_a_module_anywhere"])
    assert loaded == {"pillow": version("Pillow"), "pyyaml": version("PyYAML")}


def test_changes_say_what_an_install_did():
    before = {"diffusers": "0.39.0", "pillow": "11.3.0", "gone": "1.0"}
    after = {"diffusers": "0.42.1", "pillow": "11.3.0", "torchsde": "0.2.6"}
    assert colab_setup.changes(before, after) == ["diffusers 0.39.0 -> 0.42.1", "gone removed", "torchsde 0.2.6 (new)"]
    loaded = {"pillow": "11.3.0", "diffusers": "0.39.0"}
    assert colab_setup.replaced_while_loaded(loaded, after) == ["diffusers 0.39.0 -> 0.42.1"]


class FakePip:
    """Stands in for `pip install` (the subprocess), recording each call; its only effect is the versions
    installed_versions() reports afterwards."""

    def __init__(self, monkeypatch, before, after, fail_held=False):
        self.calls = []
        self.state = dict(before)
        monkeypatch.setattr(colab_setup, "installed_versions", lambda: dict(self.state))
        monkeypatch.setattr(colab_setup.subprocess, "run", self.run)
        self.after, self.fail_held = after, fail_held

    def run(self, command, **kwargs):
        held = "-c" in command
        constraints = Path(command[command.index("-c") + 1]).read_text() if held else None
        self.calls.append((command, constraints))
        if held and self.fail_held:
            return subprocess.CompletedProcess(command, 1, "", "ResolutionImpossible")
        self.state = dict(self.after)
        return subprocess.CompletedProcess(command, 0, "", "")


def test_it_installs_the_ranges_holding_what_colab_has_loaded(monkeypatch, capsys):
    monkeypatch.setattr(colab_setup, "loaded_distributions", lambda: {"numpy": "2.1.3", "pillow": "11.3.0"})
    pip = FakePip(monkeypatch, {"numpy": "2.1.3", "pillow": "11.3.0"}, {"numpy": "2.1.3", "pillow": "11.3.0", "x": "1"})
    changed = colab_setup.main(["numpy>=2.1", "x>=1"])
    ((command, constraints),) = pip.calls
    assert command[:3] == [sys.executable, "-m", "pip"] and command[-2:] == ["numpy>=2.1", "x>=1"]
    assert "-q" in command and "--no-compile" in command
    assert constraints == "numpy==2.1.3\npillow==11.3.0\n"
    assert changed == ["x 1 (new)"]
    out = capsys.readouterr().out
    assert "Installing what the lessons need beyond Colab's packages: x>=1" in out
    assert "x 1 (new)" in out


def test_a_replaced_loaded_package_restarts_the_kernel_and_stops_the_cell(monkeypatch, capsys):
    """Held at Colab's version pip finds no solution; then it installs the newer one, and the kernel restarts."""
    monkeypatch.setattr(colab_setup, "loaded_distributions", lambda: {"pillow": "11.3.0"})
    pip = FakePip(monkeypatch, {"pillow": "11.3.0"}, {"pillow": "99.0"}, fail_held=True)
    shutdowns = []

    class Kernel:
        def do_shutdown(self, restart):
            shutdowns.append(restart)

    shell = type("Shell", (), {"kernel": Kernel()})()
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    with pytest.raises(SystemExit, match=colab_setup.RESTART_MESSAGE):
        colab_setup.main(["Pillow>=99"])
    assert [constraints is not None for _, constraints in pip.calls] == [True, False]
    assert shutdowns == [True]
    out = capsys.readouterr().out
    assert "Colab had already loaded pillow 11.3.0 -> 99.0" in out and "run this cell again" in out


def test_a_failing_pip_stops_with_one_clear_message(monkeypatch):
    monkeypatch.setattr(colab_setup, "loaded_distributions", lambda: {})
    monkeypatch.setattr(
        colab_setup.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "")
    )
    with pytest.raises(SystemExit, match="pip could not install the packages above"):
        colab_setup.main(["no-such-package-for-this-test>=1"])


def test_pyproject_says_which_pythons():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    versions = [
        c.rsplit(" ", 1)[-1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert versions == ["3.11", "3.12", "3.13"]
    assert ".".join(read_runtime().python.split(".")[:2]) in versions, "Colab's Python is not among them"


def test_the_ranges_keep_what_colab_has_already_imported():
    """Replacing a package Colab's kernel had imported would cost a restart: the ranges must admit Colab's
    versions of those (and of ipywidgets, whose version Colab's frontend renders)."""
    runtime = read_runtime()
    ranges = {Requirement(r).name.lower(): Requirement(r) for r in colab_setup.lesson_requirements()}
    for module in [*COLAB_PRELOADED, "ipywidgets"]:
        name = {"PIL": "pillow"}.get(module.split(".")[0], module.split(".")[0])
        if name in ranges:
            colab = runtime.version(name)
            assert ranges[name].specifier.contains(colab), f"{ranges[name]} would replace Colab's {name} {colab}"
