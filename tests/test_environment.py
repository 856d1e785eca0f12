"""The pins: one source of truth, mirrored by environment.yml, and what is installed is what is pinned."""

import re
from importlib.metadata import version
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from tools import ROOT


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(read_pins(path.parent / line[3:].strip()))
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
        pins[canonical(req.name)] = spec.version
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip_section,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    pins = {}
    for line in pip_section:
        if line.startswith("-e"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        pins[canonical(req.name)] = spec.version
    return pins


def test_environment_yml_mirrors_the_pins_exactly():
    assert conda_pins() == read_pins(ROOT / "requirements-dev.txt")


def test_torch_is_the_tested_release():
    assert read_pins(ROOT / "requirements-dev.txt")["torch"] == "2.13.0"
    assert "torch" not in read_pins(ROOT / "requirements.txt")  # Colab keeps its own CUDA build


def test_constraints_agree_with_the_pins():
    pins = read_pins(ROOT / "requirements-dev.txt")
    constraints = read_pins(ROOT / "constraints.txt")
    clashes = {n: (v, constraints[n]) for n, v in pins.items() if n in constraints and constraints[n] != v}
    assert not clashes


def test_installed_versions_are_the_pinned_ones():
    for name, pinned in read_pins(ROOT / "requirements-dev.txt").items():
        installed = version(name).split("+")[0]  # torch reports 2.13.0+cpu
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}; run `make setup`"


def test_pyproject_ranges_admit_the_pins():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = read_pins(ROOT / "constraints.txt") | read_pins(ROOT / "requirements-dev.txt")  # numpy: constraints only
    for dep in deps:
        req = Requirement(dep)
        assert req.specifier.contains(pins[canonical(req.name)]), f"{dep} excludes the pin {pins[canonical(req.name)]}"
