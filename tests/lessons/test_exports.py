"""``helpers`` exports exactly the names the lessons import, as diffusers' ``utils/check_inits.py`` checks its inits:
``__all__`` sorted, without duplicates, each name imported by a notebook, each name a notebook imports exported.
Tools and tests import anything else from its module (``from helpers.loading import ModelNotAvailableError``)."""

import ast
from collections import Counter

import nbformat
import pytest

import helpers
from tools import ROOT

NOTEBOOK_DIR = ROOT / "notebooks"


def notebook_imports() -> dict[str, set[str]]:
    """Each name the notebooks take from ``helpers``, with the notebooks that take it."""
    imported: dict[str, set[str]] = {}
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
        for node in ast.walk(ast.parse(source)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "helpers" and node.level == 0:
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "helpers":
                names = [node.attr]  # after `import helpers`
            for name in names:
                imported.setdefault(name, set()).add(path.stem)
    return imported


def export_problems(exported: list[str], imported: dict[str, set[str]]) -> list[str]:
    """What is wrong with ``exported`` (``helpers.__all__``) for the names the notebooks import; empty: nothing."""
    problems = [f"{name!r} is listed {n} times" for name, n in Counter(exported).items() if n > 1]
    if exported != sorted(exported):
        first = next(a for a, b in zip(exported, sorted(exported), strict=True) if a != b)
        problems.append(f"not sorted: {first!r} is out of place; write sorted(__all__)")
    problems += [
        f"{name!r} is exported but no notebook imports it: drop it from __all__ (tools and tests import it from "
        "its module)"
        for name in sorted(set(exported) - set(imported))
    ]
    problems += [
        f"{name!r} is imported by {', '.join(sorted(imported[name]))} but not exported: add it to __all__"
        for name in sorted(set(imported) - set(exported))
    ]
    return problems


def test_helpers_exports_exactly_what_the_notebooks_import():
    imported = notebook_imports()
    assert imported, f"no notebook in {NOTEBOOK_DIR} imports from helpers"
    problems = export_problems(list(helpers.__all__), imported)
    assert not problems, "helpers/__init__.py: " + "; ".join(problems)


def test_every_exported_name_exists():
    missing = [name for name in helpers.__all__ if not hasattr(helpers, name)]  # Playground via __getattr__
    assert not missing, f"helpers.__all__ lists names helpers does not define: {missing}"


IMPORTED = {"a": {"01"}, "b": {"02"}, "c": {"01", "02"}}


@pytest.mark.parametrize(
    ("exported", "problem"),
    [
        (["a", "b", "b", "c"], "'b' is listed 2 times"),
        (["b", "a", "c"], "not sorted: 'b' is out of place"),
        (["a", "b", "c", "d"], "'d' is exported but no notebook imports it"),
        (["a", "b"], "'c' is imported by 01, 02 but not exported"),
    ],
)
def test_each_kind_of_wrong_export_is_named(exported, problem):
    problems = export_problems(exported, IMPORTED)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_right_export_list_has_no_problem():
    assert export_problems(["a", "b", "c"], IMPORTED) == []
