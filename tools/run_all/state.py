"""The run folder and its state file: where a run's files go, and what has finished.

Every run gets a new folder ``runs/<UTC time>-<profile>/``; none is ever overwritten or deleted, and
``runs/latest`` points at the newest. ``run.json`` in it records each notebook's parameters and status
(``pending``, ``running``, ``ok``, ``failed``, ``interrupted``), rewritten atomically after every change, so a
run that was interrupted, even by ``kill -9``, can be resumed: only what did not finish runs again.

Layout of a run folder::

    run.json  summary.json  summary.md  environment.json  index.html
    notebooks/<stem>.ipynb  notebooks/<stem>.html     the executed notebooks
    images/<stem>/*.png  *.json                       what each notebook saved, with its metadata
    logs/<stem>.log                                   the kernel's own stderr
    attempts/<stem>-<n>/                              what an interrupted attempt left, set aside on resume
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

STATE_FILE = "run.json"
LATEST = "latest"
FINISHED = ("ok", "failed")  # a notebook in one of these states is not run again on resume


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def executed_notebook(folder: Path, stem: str) -> Path:
    return folder / "notebooks" / f"{stem}.ipynb"


def images_dir(folder: Path, stem: str) -> Path:
    return folder / "images" / stem


def kernel_log(folder: Path, stem: str) -> Path:
    return folder / "logs" / f"{stem}.log"


def peak_file(folder: Path, stem: str) -> Path:
    return folder / "logs" / f"{stem}.peak.json"


def new_run_folder(runs_dir: Path, profile: str, now: datetime | None = None, prefix: str = "") -> Path:
    """Create and return ``runs_dir/<prefix><YYYYmmddTHHMMSSZ>-<profile>``; a taken name gets ``-2``, ``-3``, ...

    ``make bench`` uses the prefix ``bench-``, so its folders sit beside run-all's and never take their names.
    """
    stamp = prefix + (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    runs_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = runs_dir / (f"{stamp}-{profile}" if n == 1 else f"{stamp}-{profile}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"no free run folder name for {stamp}-{profile} in {runs_dir}")


def point_latest(runs_dir: Path, folder: Path) -> None:
    """Make ``runs_dir/latest`` a relative link to ``folder``, replacing the old link in one step."""
    link = runs_dir / LATEST
    if link.exists() and not link.is_symlink():
        return  # something the user made: leave it alone
    tmp = runs_dir / f".{LATEST}-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(folder.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # no symlinks here (some Windows setups): the run folder's name says which is newest
        tmp.unlink(missing_ok=True)


def find_run(runs_dir: Path, spec: str | Path) -> Path:
    """The run folder that ``spec`` names: ``latest``, a folder name inside ``runs_dir``, or a path."""
    candidates = [Path(spec), runs_dir / str(spec)]
    for folder in candidates:
        if (folder / STATE_FILE).is_file():
            return folder.resolve()
    raise FileNotFoundError(
        f"--resume {spec!s}: no run there (looked for {STATE_FILE} in {', '.join(str(c) for c in candidates)}); "
        f"give a folder under {runs_dir}/ or 'latest'"
    )


def previous_seconds(runs_dir: Path, profile: str, exclude: Path | None = None) -> dict[str, float]:
    """How long each notebook took in the newest complete run of ``profile`` (empty when there is none)."""
    folders = sorted((p for p in runs_dir.glob(f"*-{profile}*") if p.is_dir() and not p.is_symlink()), reverse=True)
    for folder in folders:
        if folder == exclude:
            continue
        try:
            data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("status") == "complete" and data.get("profile") == profile:
            return {stem: nb["seconds"] for stem, nb in data["notebooks"].items() if nb.get("seconds")}
    return {}


def longest_first(stems: list[str], seconds: dict[str, float]) -> list[str]:
    """``stems`` with the longest first (unknown ones count as longest), so parallel jobs finish close together.

    Example:
        >>> longest_first(["01", "02", "03"], {"01": 5.0, "02": 20.0})
        ['03', '02', '01']
    """
    return sorted(stems, key=lambda stem: -seconds.get(stem, float("inf")))


def set_aside(folder: Path, stem: str) -> Path | None:
    """Move what an unfinished attempt of ``stem`` left into ``attempts/<stem>-<n>/`` (never deleting it)."""
    leftovers = [
        p for p in (executed_notebook(folder, stem), images_dir(folder, stem), kernel_log(folder, stem)) if p.exists()
    ]
    peak_file(folder, stem).unlink(missing_ok=True)
    if not leftovers:
        return None
    n = 1
    while (folder / "attempts" / f"{stem}-{n}").exists():
        n += 1
    target = folder / "attempts" / f"{stem}-{n}"
    target.mkdir(parents=True)
    for path in leftovers:
        path.rename(target / path.name)
    return target


class RunState:
    """``run.json``: the run's settings and every notebook's status, saved after every change (thread-safe)."""

    def __init__(self, folder: Path, data: dict):
        self.folder = folder
        self.data = data
        self._lock = threading.Lock()

    @classmethod
    def create(cls, folder: Path, profile: str, jobs: int, parameters: dict[str, dict], sources: dict[str, Path]):
        data = {
            "run": folder.name,
            "profile": profile,
            "status": "running",
            "started": utc_now(),
            "finished": None,
            "runner_pid": os.getpid(),
            "jobs": jobs,
            "notebooks": {
                stem: {"source": str(sources[stem]), "parameters": params, "status": "pending", "attempts": 0}
                for stem, params in parameters.items()
            },
        }
        state = cls(folder, data)
        state.save()
        return state

    @classmethod
    def load(cls, folder: Path) -> RunState:
        return cls(folder, json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))

    @property
    def notebooks(self) -> dict[str, dict]:
        return self.data["notebooks"]

    def missing(self) -> list[str]:
        """The notebooks that have not finished (pending, running or interrupted), in run order."""
        return [stem for stem, nb in self.notebooks.items() if nb["status"] not in FINISHED]

    def update(self, stem: str, **fields) -> None:
        with self._lock:
            self.notebooks[stem].update(fields)
            self._save_locked()

    def set(self, **fields) -> None:
        with self._lock:
            self.data.update(fields)
            self._save_locked()

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def snapshot(self) -> dict:
        """A deep copy, safe to read while other threads update the state."""
        with self._lock:
            return json.loads(json.dumps(self.data))

    def _save_locked(self) -> None:
        tmp = self.folder / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.folder / STATE_FILE)
