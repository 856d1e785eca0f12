"""The parameters of a run: each notebook's own defaults, one YAML file per profile, and overrides.

papermill only *warns* about a parameter that a notebook does not declare, so a typo (``sed=3``) would run every
notebook with its default seed. Here every name is checked against what each notebook declares (read with
``papermill.inspect_notebook``) before anything runs, and so is the type of every value whose default is a plain
int, float, bool or string, and the range of every count and size the lessons check (``num_inference_steps=-5``
stops the run at once, with the message a lesson would give).

The YAML file of a profile (``notebooks/params/<profile>.yaml``) holds::

    seed: 0                      # top level: for every notebook that declares the parameter
    notebooks:
      03_schedulers:             # a section for one notebook (its file name, or just its number "03")
        num_inference_steps: 4   # ... which must declare it

Overrides (``seed=3``, or ``03.seed=3`` for one notebook) win over the file; values are read as YAML scalars.

Example:
    >>> parse_override("03.prompt=a red fox")
    Override(notebook='03', name='prompt', value='a red fox', text='03.prompt=a red fox')
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from helpers.checks import check_count, check_number, check_size

from ..common import match_notebook

# Set by run-all itself: the profile from PROFILE=, the image folder inside the run folder.
RUNNER_PARAMETERS = ("profile", "output_dir")
SECTIONS_KEY = "notebooks"
# The counts and sizes the lessons check before a picture (helpers.checks), checked here with the same functions,
# so that a bad value stops the run before any kernel starts instead of failing every notebook that uses it.
RANGE_CHECKS: dict[str, Callable[[str, object], object]] = {
    "num_inference_steps": check_count,
    "batch_size": check_count,
    "seed": partial(check_count, minimum=0),
    "height": check_size,
    "width": check_size,
    "guidance_scale": partial(check_number, minimum=0),
}


class ParameterError(ValueError):
    """A parameter that no notebook declares, a value of the wrong type, or a malformed override."""


@dataclass(frozen=True)
class Override:
    """One ``[notebook.]name=value`` from the command line."""

    notebook: str | None
    name: str
    value: object
    text: str


def parse_override(text: str) -> Override:
    """Parse ``name=value`` or ``notebook.name=value``; the value is a YAML scalar (``3``, ``true``, ``a cat``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParameterError(f"override {text!r} is not name=value; write e.g. seed=3 or 03.seed=3")
    notebook, _, name = key.rpartition(".")
    if not name.isidentifier():
        raise ParameterError(f"override {text!r}: {name!r} is not a parameter name; write e.g. seed=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ParameterError(f"override {text!r}: the value is not valid YAML ({err.problem}); quote it") from None
    if isinstance(value, (dict, list)):
        raise ParameterError(f"override {text!r}: give one value (a number, true/false or text), not {value!r}")
    return Override(notebook or None, name, value, text)


def parse_overrides(texts: Iterable[str]) -> list[Override]:
    """Parse overrides; each text may hold several, split like a shell does (``'seed=3 prompt="a cat"'``)."""
    return [parse_override(item) for text in texts for item in shlex.split(text)]


class _Source(str):
    """A default that is an expression, not a literal: its type is unknown, so any value is accepted."""


def declared_parameters(notebook: Path) -> dict[str, object]:
    """The parameters a notebook declares in its ``parameters`` cell, with their default values.

    A default that is not a Python literal (``torch.float16``) is kept as its source text.
    """
    import papermill

    declared = {}
    for name, info in papermill.inspect_notebook(str(notebook)).items():
        try:
            declared[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            declared[name] = _Source(info["default"])
    return declared


def _notebook(key: str | int, stems: Sequence[str], where: str) -> str:
    """The stem ``key`` names (:func:`tools.common.match_notebook`), or a :class:`ParameterError` saying so."""
    try:
        return match_notebook(key, stems, where)
    except ValueError as err:
        raise ParameterError(str(err)) from None


def _check_value(name: str, value: object, default: object, stem: str, where: str) -> None:
    """The value's type against the notebook's default, then its range (:data:`RANGE_CHECKS`)."""
    _check_type(name, value, default, stem, where)
    check = RANGE_CHECKS.get(name)
    if check is not None and value is not None:  # None: the profile's value, as in the notebook
        try:
            check(name, value)
        except ValueError as err:
            raise ParameterError(f"{where}: {err}") from None


def _check_type(name: str, value: object, default: object, stem: str, where: str) -> None:
    if default is None or isinstance(default, _Source) or not isinstance(default, (bool, int, float, str)):
        return
    expected = type(default)
    ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise ParameterError(
            f"{where}: {name}={value!r} is a {type(value).__name__}, but {stem} declares {name} as "
            f"{expected.__name__} (default {default!r}); give e.g. {name}={default!r}"
        )


def _reject_runner_parameter(name: str, where: str) -> None:
    if name == "profile":
        raise ParameterError(f"{where}: set the profile with PROFILE=<name> (or --profile), not as a parameter")
    if name == "output_dir":
        raise ParameterError(f"{where}: output_dir is the run folder's images/<notebook>; it cannot be set")


def load_param_file(path: Path) -> tuple[dict, dict]:
    """Read a profile's YAML file into (common values, per-notebook sections); a missing file is empty."""
    if not path.exists():
        return {}, {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter names to values, got {type(data).__name__}")
    sections = data.pop(SECTIONS_KEY, None) or {}
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        raise ParameterError(f"{path}: '{SECTIONS_KEY}:' must map notebook names to mappings of parameters")
    return data, sections


def resolve_parameters(
    declared: dict[str, dict[str, object]],
    selected: Sequence[str],
    common: dict,
    sections: dict,
    overrides: Sequence[Override] = (),
    source: str = "params file",
) -> dict[str, dict[str, object]]:
    """The parameters to pass to each selected notebook (without the runner's own ``profile`` and ``output_dir``).

    Args:
        declared: every notebook's declared parameters, by stem (all notebooks, so a file may serve a selection).
        selected: the stems that will run.
        common, sections: from :func:`load_param_file`.
        overrides: from :func:`parse_overrides`.
        source: the file's name, for error messages.

    Raises:
        ParameterError: naming the parameter, the value, the notebook and what would work.
    """
    stems = list(declared)
    for stem in selected:
        missing = [p for p in RUNNER_PARAMETERS if p not in declared[stem]]
        if missing:
            raise ParameterError(
                f"{stem} declares no {' or '.join(missing)} in its parameters cell; run-all needs "
                f'profile = "auto" and output_dir = None there (it sets both)'
            )
    everywhere = sorted({name for params in declared.values() for name in params})
    resolved: dict[str, dict[str, object]] = {stem: {} for stem in selected}
    for name, value in common.items():
        where = f"{source}: {name}"
        _reject_runner_parameter(name, where)
        if name not in everywhere:
            raise ParameterError(f"{where}: no notebook declares {name!r}; the parameters are {everywhere}")
        for stem in selected:
            if name in declared[stem]:
                _check_value(name, value, declared[stem][name], stem, where)
                resolved[stem][name] = value
    for key, params in sections.items():
        stem = _notebook(key, stems, f"{source}: {SECTIONS_KEY}")
        for name, value in params.items():
            _set_one(declared[stem], resolved.get(stem), stem, name, value, f"{source}: {SECTIONS_KEY}.{stem}.{name}")
    for ov in overrides:
        where = f"override {ov.text!r}"
        _reject_runner_parameter(ov.name, where)
        if ov.notebook is not None:
            stem = _notebook(ov.notebook, stems, where)
            _set_one(declared[stem], resolved.get(stem), stem, ov.name, ov.value, where)
            continue
        takers = [stem for stem in selected if ov.name in declared[stem]]
        if not takers:
            known = sorted({n for stem in selected for n in declared[stem]} - set(RUNNER_PARAMETERS))
            raise ParameterError(f"{where}: no selected notebook declares {ov.name!r}; they declare {known}")
        for stem in takers:
            _set_one(declared[stem], resolved[stem], stem, ov.name, ov.value, where)
    return resolved


def _set_one(declared: dict, target: dict | None, stem: str, name: str, value: object, where: str) -> None:
    _reject_runner_parameter(name, where)
    if name not in declared:
        known = sorted(set(declared) - set(RUNNER_PARAMETERS))
        raise ParameterError(f"{where}: {stem} declares no parameter {name!r}; it declares {known}")
    _check_value(name, value, declared[name], stem, where)
    if target is not None:  # None: the notebook is not selected this time, but the name was still checked
        target[name] = value
