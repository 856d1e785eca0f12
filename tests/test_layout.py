"""The folder tree is part of the lesson: lesson helpers at the top of ``helpers/``, machinery in named rooms."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.profiles import PROFILES
from tools import ROOT
from tools.run_all.cli import CPU_JOBS, check_jobs

HELPERS = ROOT / "helpers"
LESSON_MODULES = sorted(p for p in HELPERS.glob("*.py") if p.name != "__init__.py")
SUBPACKAGES = sorted(p.parent for p in HELPERS.glob("*/**/__init__.py"))


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

    listed = {line.split("`")[1] for line in helpers.__doc__.splitlines() if line.startswith("- :mod:`helpers.")}
    rooms = {p for p in SUBPACKAGES if p.parent == HELPERS}
    assert listed == {f"helpers.{p.stem}" for p in LESSON_MODULES} | {f"helpers.{p.name}" for p in rooms}


@pytest.mark.parametrize("path", LESSON_MODULES + sorted(HELPERS.glob("standins/*.py")), ids=lambda p: p.name)
def test_no_lesson_module_imports_the_tools(path):
    bad = sorted(name for name in imported_modules(path) if "tools" in name.split("."))
    assert not bad, f"{path.relative_to(HELPERS.parent)} imports {bad}: lessons must not depend on tools"


def test_importing_the_lesson_helpers_loads_none_of_the_tools():
    code = "import sys, helpers; print(sorted(m for m in sys.modules if m.startswith('tools')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", SUBPACKAGES, ids=lambda p: p.name)
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
