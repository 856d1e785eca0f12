"""What several tools share: a free port, choosing notebooks by number, and how one notebook's run went.

- :func:`free_port`: for the local Hub, JupyterLab and ``accelerate launch``.
- :func:`match_notebook` and :func:`select_notebooks`: ``--notebooks 02 05_memory`` for run-all, the UI check,
  test-replica and the Colab simulation, and run-all's per-notebook parameters.
- :class:`NotebookResult`: one notebook run by run-all (papermill) or by test-replica (nbval).

Example:
    >>> [p.name for p in select_notebooks([Path("01_load_model.ipynb"), Path("02_text_to_image.ipynb")], ["2"])]
    Traceback (most recent call last):
    ...
    ValueError: --notebooks: no notebook '2'; use one of ['01_load_model', '02_text_to_image'] (or their numbers)
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def match_notebook(key: str | int, stems: Sequence[str], where: str = "--notebooks") -> str:
    """The one stem that ``key`` names: the stem itself, a file name or path, or its number (``"03"``).

    YAML reads an unquoted ``03:`` as the number 3, so a number matches the notebook whose prefix has its value.

    Raises:
        ValueError: ``where``, the key, and the stems there are.

    Example:
        >>> match_notebook("03", ["02_text_to_image", "03_schedulers"]), match_notebook(3, ["03_schedulers"])
        ('03_schedulers', '03_schedulers')
    """
    if isinstance(key, int) and not isinstance(key, bool):
        found = [s for s in stems if s.split("_", 1)[0].isdigit() and int(s.split("_", 1)[0]) == key]
        if len(found) == 1:
            return found[0]
    key = Path(str(key)).name.removesuffix(".ipynb")
    if key in stems:
        return key
    found = [s for s in stems if s.split("_", 1)[0] == key]
    if len(found) == 1:
        return found[0]
    raise ValueError(f"{where}: no notebook {key!r}; use one of {list(stems)} (or their numbers)")


def select_notebooks(
    notebooks: Iterable[Path], wanted: Sequence[str | int] | None, where: str = "--notebooks"
) -> list[Path]:
    """The notebooks that ``wanted`` names (see :func:`match_notebook`), in their given order; all when None.

    Example:
        >>> paths = [Path("00_playground.ipynb"), Path("02_text_to_image.ipynb"), Path("05_memory.ipynb")]
        >>> [p.stem for p in select_notebooks(paths, ["05_memory", "00"])]
        ['00_playground', '05_memory']
    """
    notebooks = list(notebooks)
    if not wanted:
        return notebooks
    stems = [path.stem for path in notebooks]
    chosen = {match_notebook(key, stems, where) for key in wanted}
    return [path for path in notebooks if path.stem in chosen]


@dataclass
class NotebookResult:
    """How one notebook's run went: run-all's papermill run or test-replica's nbval run."""

    notebook: str
    status: str  # "ok", "failed" or "interrupted" (stopped by Ctrl-C or SIGTERM)
    seconds: float
    peak_bytes: int | None = None  # the most memory the kernel used, of the kind below (None: not measured)
    memory_kind: str | None = None  # "process RSS" or "GPU memory allocated"
    images: int = 0  # the pictures it saved (run-all)
    error: dict | None = None  # the failing cell and the exception (run-all; None when it succeeded)
    gpu_peak_bytes: int | None = None  # GPU memory in use as nvidia-smi reports it (test-replica on CUDA)
    cpu_seconds: float | None = None  # user + system time of the run and its kernel (test-replica)
    output: str = ""  # what the run printed (test-replica's pytest)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict:
        return asdict(self)
