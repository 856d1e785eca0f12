"""The folder tree is part of the lesson: lesson helpers at the top of ``helpers/``, machinery in named rooms.

``helpers`` is the installed package the notebooks import; ``tools`` runs from the repository root behind the
``make`` targets. The lessons never depend on the tools, and each room's docstring says what it holds.
"""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers.profiles import PROFILES
from tools import ROOT
from tools.run_all.cli import CPU_JOBS, check_jobs

HELPERS = ROOT / "helpers"
TOOLS = ROOT / "tools"
LESSON_MODULES = sorted(p for p in HELPERS.glob("*.py") if p.name != "__init__.py")
SUBPACKAGES = sorted(p.parent for p in HELPERS.glob("*/**/__init__.py"))
TOOL_PACKAGES = sorted(p.parent for p in TOOLS.glob("*/**/__init__.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports written with their dots (``..tools.x``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_package_docstring_lists_every_lesson_module_and_room():
    import helpers

    listed = listed_modules(helpers.__doc__, "helpers")
    rooms = {p for p in SUBPACKAGES if p.parent == HELPERS}
    assert listed == {f"helpers.{p.stem}" for p in LESSON_MODULES} | {f"helpers.{p.name}" for p in rooms}


def listed_modules(doc: str, package: str) -> set[str]:
    """The names of the ``- :mod:`package.name```` lines of a docstring."""
    return {line.split("`")[1] for line in doc.splitlines() if line.startswith(f"- :mod:`{package}.")}


def test_the_tools_docstring_lists_every_tool_module_and_package():
    import tools

    modules = {p.stem for p in TOOLS.glob("*.py") if p.name != "__init__.py"}
    packages = {p.parent.name for p in TOOLS.glob("*/__init__.py")}
    assert listed_modules(tools.__doc__, "tools") == {f"tools.{name}" for name in modules | packages}


@pytest.mark.parametrize("path", sorted(HELPERS.rglob("*.py")), ids=lambda p: str(p.relative_to(HELPERS)))
def test_no_helpers_module_imports_the_tools(path):
    bad = sorted(name for name in imported_modules(path) if "tools" in name.split("."))
    assert not bad, f"{path.relative_to(HELPERS.parent)} imports {bad}: lessons must not depend on tools"


@pytest.mark.e2e  # a fresh Python process: its imports take seconds
def test_importing_the_lesson_helpers_loads_none_of_the_tools():
    code = "import sys, helpers; print(sorted(m for m in sys.modules if m.startswith('tools')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_installing_the_project_installs_helpers_only():
    from setuptools import find_packages

    found = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    include = found["find"]["include"]
    assert include == ["helpers*"]
    installed = find_packages(str(ROOT), include=include)
    assert "helpers" in installed and "helpers.standins" in installed
    assert all(name.split(".")[0] == "helpers" for name in installed), installed


@pytest.mark.parametrize("folder", SUBPACKAGES + TOOL_PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_subpackage_says_what_it_holds(folder):
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
    assert doc and len(doc.splitlines()) >= 3, f"{folder}/__init__.py needs a docstring of a few lines"
    for module in folder.glob("*.py"):
        if module.name not in ("__init__.py", "__main__.py"):
            assert module.stem in doc, f"{folder.name}/__init__.py does not mention {module.name}"


def test_run_all_defaults_to_the_fastest_measured_jobs_on_a_cpu(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert check_jobs(None, PROFILES["tiny"]) == CPU_JOBS == 2
    assert check_jobs(None, PROFILES["cpu"]) == 2
    assert check_jobs(None, PROFILES["mps"]) == 1
    assert check_jobs(3, PROFILES["tiny"]) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert check_jobs(None, PROFILES["tiny"]) == 1
