"""The report of a run: ``summary.json``, ``summary.md``, the HTML renderings and the ``index.html`` gallery.

Everything links relatively, so a run folder can be zipped and shared. Every caption is escaped (jinja2's
autoescape), since prompts are free text.

Example:
    >>> write_reports(Path("runs/latest"), RunState.load(Path("runs/latest")).snapshot())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers.tables import markdown_table

from .state import executed_notebook, images_dir, kernel_log

TEMPLATES = Path(__file__).resolve().parent / "templates"
# How each caption field reads: "seed 3 · EulerDiscreteScheduler · 10 steps · tiny:base".
CAPTION = {"seed": "seed {}", "scheduler": "{}", "steps": "{} steps", "model": "{}"}
# The gallery's words for its sections; another tool's gallery passes its own (see render_gallery).
GALLERY_LABELS = {
    "section": "notebook",
    "sections": "Notebooks",
    "jobs": "JOBS",
    "none": "No images saved by this notebook.",
    "memory": "peak memory",  # a column header; empty leaves the column out
    "links": "executed",
}


def render_html(notebook: Path) -> Path:
    """Render an executed notebook to HTML beside it (nbconvert, lab template); returns the HTML path."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    target = notebook.with_suffix(".html")
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, target)
    return target


def _mib(peak_bytes: int | None) -> float | None:
    return None if peak_bytes is None else round(peak_bytes / 2**20, 1)


def image_entries(folder: Path, stem: str) -> list[dict]:
    """Each image a notebook saved: its path relative to the run folder and its metadata (from the sidecar)."""
    entries = []
    pngs = images_dir(folder, stem).glob("*.png")
    for png in sorted(pngs, key=lambda p: (p.stat().st_mtime_ns, p.name)):  # in the order the notebook made them
        try:
            meta = json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        entries.append(image_entry(folder, png, meta))
    return entries


def image_entry(folder: Path, png: Path, meta: dict) -> dict:
    """One picture of the gallery: its path relative to ``folder``, its prompt, caption and metadata."""
    caption = " · ".join(form.format(meta[key]) for key, form in CAPTION.items() if meta.get(key) not in (None, ""))
    return {
        "src": png.relative_to(folder).as_posix(),
        "prompt": meta.get("prompt") or png.stem,
        "caption": caption,
        "meta": meta,
    }


def _link(folder: Path, path: Path) -> str | None:
    return path.relative_to(folder).as_posix() if path.exists() else None


def build_summary(folder: Path, state: dict) -> dict:
    """The run's summary: overall status and counts, and one row per notebook (in run order)."""
    rows = []
    for stem, nb in state["notebooks"].items():
        executed = executed_notebook(folder, stem)
        rows.append(
            {
                "notebook": stem,
                "status": nb["status"],
                "seconds": nb.get("seconds"),
                "peak_mib": _mib(nb.get("peak_bytes")),
                "memory_kind": nb.get("memory_kind"),
                "images": nb.get("images", 0),
                "error": nb.get("error"),
                "parameters": nb.get("parameters", {}),
                "executed": _link(folder, executed),
                "html": _link(folder, executed.with_suffix(".html")),
                "log": _link(folder, kernel_log(folder, stem)),
            }
        )
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "interrupted", "pending", "running")}
    complete = counts["ok"] + counts["failed"] == len(rows)
    return {
        "run": state["run"],
        "profile": state["profile"],
        "status": state["status"],
        "complete": complete and state["status"] == "complete",
        **counts,
        "started": state.get("started"),
        "finished": state.get("finished"),
        "seconds": state.get("seconds"),
        "jobs": state.get("jobs"),
        "notebooks": rows,
    }


def _fmt_seconds(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def format_memory(peak_mib: float | None, kind: str | None) -> str:
    """``"526 MiB (process RSS)"``, or a dash when the kernel could not record it."""
    return "—" if peak_mib is None else f"{peak_mib:.0f} MiB ({kind})"


def _fmt_memory(row: dict) -> str:
    return format_memory(row["peak_mib"], row["memory_kind"])


def format_error(error: dict | None) -> str:
    """``"cell 3 (In [4]): ValueError: ..."``: the failing cell of the executed notebook and the exception."""
    if not error:
        return ""
    cell = error.get("cell_index")
    where = "" if cell is None else f"cell {cell} (In [{error['execution_count']}]): "
    return f"{where}{error['ename']}: {error['evalue']}"


def summary_table(summary: dict) -> str:
    """The per-notebook table in Markdown (also what run-all prints at the end)."""
    rows = [
        [row["notebook"], row["status"], _fmt_seconds(row["seconds"]), _fmt_memory(row), row["images"]]
        for row in summary["notebooks"]
    ]
    columns = ["notebook", "status", "seconds", "peak memory", "images"]
    return markdown_table(rows, columns, right=columns[2:])


def headline(summary: dict) -> str:
    """One line: the run, whether it is complete, and the counts."""
    state = "complete" if summary["complete"] else summary["status"]
    parts = [f"{summary[k]} {k}" for k in ("ok", "failed", "interrupted", "pending") if summary[k] or k == "ok"]
    return f"Run {summary['run']}: {state}, {', '.join(parts)}"


def summary_markdown(summary: dict, banner: str | None = None) -> str:
    """``summary.md``: headline, the table, each failure with its cell and error."""
    out = [f"# {headline(summary)}", ""]
    out.append(
        f"Profile `{summary['profile']}`, JOBS={summary['jobs']}, started {summary['started']}"
        + (f", {summary['seconds']:.1f} s in all." if summary.get("seconds") is not None else ".")
    )
    if banner:
        out += ["", "```", banner, "```"]
    out += ["", summary_table(summary)]
    failures = [r for r in summary["notebooks"] if r["error"]]
    if failures:
        out += ["", "## Failures and interruptions", ""]
        for row in failures:
            out.append(f"- **{row['notebook']}** ({row['status']}): {format_error(row['error'])}")
            if row["error"].get("source"):
                out += ["", "  ```python", *("  " + line for line in row["error"]["source"].splitlines()), "  ```"]
    out += ["", "Environment: `environment.json`. Executed notebooks: `notebooks/`. Images: `images/`.", ""]
    return "\n".join(out)


def gallery_html(folder: Path, summary: dict, environment: dict | None, banner: str | None) -> str:
    """``index.html``: the banner (tiny profile), the table, every image grouped by notebook, the environment."""
    sections = [(row, image_entries(folder, row["notebook"])) for row in summary["notebooks"]]
    return render_gallery(summary, headline(summary), sections, environment, banner)


def render_gallery(
    summary: dict,
    headline: str,
    sections: list[tuple[dict, list[dict]]],
    environment: dict | None,
    banner: str | None,
    labels: dict | None = None,
) -> str:
    """The gallery page (``templates/gallery.html.j2``): a table with one row per section, then each section's images.

    Args:
        summary: ``profile``, ``jobs``, ``started``, ``seconds`` for the line under the headline.
        sections: ``(row, images)`` pairs; a row has ``notebook`` (its name), ``status``, ``seconds``, ``peak_mib``,
            ``memory_kind``, ``images``, ``error``, ``parameters`` and links ``html``, ``executed``, ``log``;
            images are :func:`image_entry` dicts.
        labels: other words for another tool's gallery: ``section`` ("notebook"), ``sections`` ("Notebooks"),
            ``jobs`` ("JOBS"), ``none`` ("No images saved by this notebook."), and the headers of the ``memory``
            and ``links`` columns ("peak memory", "executed"; an empty one leaves its column out). A row's
            ``title``, when it has one, is shown instead of its name.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    env.filters["seconds"] = _fmt_seconds
    env.filters["memory"] = _fmt_memory
    env.filters["error"] = format_error
    return env.get_template("gallery.html.j2").render(
        summary=summary,
        headline=headline,
        sections=sections,
        environment=environment,
        banner=banner,
        labels={**GALLERY_LABELS, **(labels or {})},
    )


def write_reports(folder: Path, state: dict, environment: dict | None = None, banner: str | None = None) -> dict:
    """Write ``summary.json``, ``summary.md`` and ``index.html`` into the run folder; returns the summary."""
    summary = build_summary(folder, state)
    files = {
        "summary.json": json.dumps(summary, indent=2, default=str),
        "summary.md": summary_markdown(summary, banner),
        "index.html": gallery_html(folder, summary, environment, banner),
    }
    for name, text in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
    return summary
