"""Colab's runtime as Google publishes it: the committed lines of its ``pip freeze``, and how to refresh them.

Google publishes each Colab image's packages in https://github.com/googlecolab/backend-info
(``pip-freeze.gpu.txt``, ``os-info-gpu.txt``). ``colab-runtime.txt`` beside this module keeps the lines that
matter here (what the lessons import, what Colab's kernel has loaded, the neighbours whose bounds pip must
respect), with the commit and date they come from. ``make colab-refresh`` rewrites it from the repository's
current state, keeping the same package names.

Example:
    >>> runtime = read_runtime()
    >>> runtime.python.split(".")[:2], runtime.pins["ipywidgets"]
    (['3', '13'], '7.7.1')
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

RUNTIME_FILE = Path(__file__).with_name("colab-runtime.txt")
SOURCE = "https://github.com/googlecolab/backend-info"
FREEZE, OS_INFO = "pip-freeze.gpu.txt", "os-info-gpu.txt"
HEADER = """\
# Colab's GPU runtime as Google publishes it: the lines of its `pip freeze` that matter to these lessons (what they
# import, what Colab's kernel has loaded, and the neighbours whose version bounds pip must respect).
# `make test-colab` builds a Python {short} virtual environment with exactly these versions (local versions such
# as +cu128 dropped: PyPI's torch of the same release is a CUDA build too). Refresh: `make colab-refresh`.
# Source: {source} ({freeze}, {os_info})
# Commit: {commit} ({date}: {subject})
# Python: {python}
"""


@dataclass(frozen=True)
class Runtime:
    """Colab's published runtime: its Python, where the lines come from, and the pins (name as Colab spells it)."""

    python: str
    source: str
    commit: str
    date: str
    subject: str
    pins: dict[str, str]

    def requirements(self) -> list[str]:
        """The pins as pip installs them from PyPI (``torch==2.11.0+cu128`` becomes ``torch==2.11.0``)."""
        return [f"{name}=={version.split('+')[0]}" for name, version in sorted(self.pins.items(), key=_key)]

    def version(self, name: str) -> str | None:
        """The pinned version of ``name`` (any spelling), without its local part."""
        found = {canonicalize_name(n): v for n, v in self.pins.items()}.get(canonicalize_name(name))
        return found.split("+")[0] if found else None


def _key(item: tuple[str, str]) -> str:
    return canonicalize_name(item[0])


def read_runtime(path: Path = RUNTIME_FILE) -> Runtime:
    """Parse ``colab-runtime.txt``: ``# Key: value`` header lines, then ``name==version`` lines."""
    header: dict[str, str] = {}
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"# (Source|Commit|Python): (.*)$", line):
            header[match[1]] = match[2].strip()
        elif line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            if not version:
                raise ValueError(f"{path.name}: {line!r} is not a name==version line")
            pins[name.strip()] = version.strip()
    commit = re.match(r"(\S+) \(([^:]+): (.*)\)$", header.get("Commit", ""))
    if not commit or "Python" not in header:
        raise ValueError(f"{path.name}: the header needs '# Commit: <sha> (<date>: <subject>)' and '# Python: <x.y.z>'")
    source = header.get("Source", SOURCE).split(" ")[0]
    return Runtime(header["Python"], source, commit[1], commit[2], commit[3], pins)


def write_runtime(runtime: Runtime, path: Path = RUNTIME_FILE) -> None:
    short = ".".join(runtime.python.split(".")[:2])
    text = HEADER.format(
        short=short,
        source=runtime.source,
        freeze=FREEZE,
        os_info=OS_INFO,
        commit=runtime.commit,
        date=runtime.date,
        subject=runtime.subject,
        python=runtime.python,
    )
    text += "".join(f"{name}=={version}\n" for name, version in sorted(runtime.pins.items(), key=_key))
    path.write_text(text, encoding="utf-8")


def parse_freeze(text: str) -> dict[str, str]:
    """``name==version`` lines of a ``pip freeze`` (lines installed from a URL or a file are left out)."""
    pins = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            pins[name] = version
    return pins


def parse_python(os_info: str) -> str:
    """``3.13.15`` from the ``Python 3.13.15`` line of ``os-info-gpu.txt``."""
    match = re.search(r"^Python (\d+\.\d+\.\d+)", os_info, re.MULTILINE)
    if not match:
        raise ValueError(f"no 'Python x.y.z' line in {OS_INFO}")
    return match[1]


def from_backend_info(checkout: Path, names: list[str], source: str = SOURCE) -> Runtime:
    """The runtime that a clone of googlecolab/backend-info describes at its HEAD, for the given package names."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True).stdout

    freeze = parse_freeze(git("show", f"HEAD:{FREEZE}"))
    by_name = {canonicalize_name(name): name for name in freeze}
    missing = sorted(name for name in names if canonicalize_name(name) not in by_name)
    if missing:
        raise ValueError(f"{FREEZE} at {source} no longer lists {missing}: remove them from {RUNTIME_FILE.name}")
    commit, date, subject = git("log", "-1", "--format=%H%n%cs%n%s").splitlines()[:3]
    pins = {by_name[canonicalize_name(n)]: freeze[by_name[canonicalize_name(n)]] for n in names}
    return Runtime(parse_python(git("show", f"HEAD:{OS_INFO}")), source, commit, date, subject, pins)


def refresh(source: str = SOURCE, path: Path = RUNTIME_FILE, add: tuple[str, ...] = ()) -> tuple[Runtime, Runtime]:
    """Rewrite ``path`` from the current state of ``source`` (a URL or a local clone); returns (old, new)."""
    old = read_runtime(path)
    with tempfile.TemporaryDirectory() as folder:
        checkout = Path(folder, "backend-info")
        url = Path(source).resolve().as_uri() if Path(source).exists() else source
        subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(checkout)], check=True)
        new = from_backend_info(checkout, [*old.pins, *add], source=SOURCE if url != source else source)
    write_runtime(new, path)
    return old, new


def describe_refresh(old: Runtime, new: Runtime) -> list[str]:
    """What a refresh changed, one phrase per package (and Python)."""
    from helpers.colab_setup import changes

    lines = [f"python {old.python} -> {new.python}"] if old.python != new.python else []
    return lines + changes(old.pins, new.pins)
