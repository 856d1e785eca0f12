"""What a finished run leaves beside its images: ``manifest.jsonl``, ``summary.json`` and the ``index.html`` gallery.

The main process writes them once, after every process has finished. The gallery is run-all's (the same
template), with one section per prompt.

Example:
    >>> write_reports(Path("out"), items, records, summary, environment)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..run_all.report import image_entry, render_gallery
from .plan import IMAGES, Item, made
from .work import manifest_record

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
GALLERY = "index.html"
# The gallery's words (see run_all.report.render_gallery): a section per prompt, no memory or links column.
LABELS = {
    "section": "prompt",
    "sections": "Prompts",
    "jobs": "processes",
    "none": "No image.",
    "memory": "",
    "links": "",
}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def manifest_rows(out: Path, items: list[Item], records: list[dict]) -> list[dict]:
    """One row per item, in item order: made by this run (with who made it), already there, or missing."""
    by_key = {record["item"]: record for record in records}
    rows = []
    for item in items:
        if item.key in by_key:
            rows.append(by_key[item.key])
            continue
        meta = made(out / IMAGES, item)
        if meta is None:
            rows.append(manifest_record(item, None, "missing", {}) | {"file": None})
        else:
            rows.append(manifest_record(item, meta["file"], "existing", meta))
    return rows


def seed_list(seeds: list[int]) -> str:
    """``[0, 1, 2, 3, 7]`` as ``"0-3,7"``."""
    parts, start = [], None
    for i, seed in enumerate(seeds):
        if start is None:
            start = seed
        if i + 1 == len(seeds) or seeds[i + 1] != seed + 1:
            parts.append(str(seed) if seed == start else f"{start}-{seed}")
            start = None
    return ",".join(parts)


def sections(out: Path, items: list[Item], rows: list[dict]) -> list[tuple[dict, list[dict]]]:
    """The gallery's sections: one per prompt, its images in seed order."""
    by_prompt: dict[int, list[tuple[Item, dict]]] = {}
    for item, row in zip(items, rows, strict=True):
        by_prompt.setdefault(item.prompt_index, []).append((item, row))
    result = []
    for p, pairs in by_prompt.items():
        first = pairs[0][0]
        entries = []
        for item, row in pairs:
            if row["file"]:
                meta = made(out / IMAGES, item) or {}
                entries.append(image_entry(out, out / row["file"], meta))
        parameters = {"source": first.source, "seeds": seed_list([item.seed for item, _ in pairs])}
        if first.negative_prompt:
            parameters["negative_prompt"] = first.negative_prompt
        missing = sum(row["status"] == "missing" for _, row in pairs)
        seconds = [row["seconds"] for _, row in pairs if row.get("seconds") is not None]
        section = {
            "notebook": f"p{p:04d}",
            "title": first.prompt,
            "status": "missing" if missing else "ok",
            "seconds": sum(seconds) if seconds else None,
            "images": len(entries),
            "error": None,
            "parameters": parameters,
        }
        result.append((section, entries))
    return result


def headline(summary: dict) -> str:
    """``"prompts.txt: 16 images, 12 made now, 4 already there"`` (and how many are missing, if any)."""
    parts = [f"{summary['made']} made now", f"{summary['existing']} already there"]
    if summary["missing"]:
        parts.append(f"{summary['missing']} missing")
    return f"{Path(summary['prompts']).name}: {summary['items']} images, {', '.join(parts)}"


def write_reports(
    out: Path,
    items: list[Item],
    records: list[dict],
    summary: dict,
    environment: dict | None = None,
    banner: str | None = None,
) -> dict:
    """Write ``manifest.jsonl``, ``summary.json`` (``summary`` with the counts) and ``index.html``; return it."""
    rows = manifest_rows(out, items, records)
    counts = {status: sum(row["status"] == status for row in rows) for status in ("made", "existing", "missing")}
    summary = {**summary, "items": len(rows), **counts}
    _write(out / MANIFEST, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    _write(out / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
    page = render_gallery(summary, headline(summary), sections(out, items, rows), environment, banner, LABELS)
    _write(out / GALLERY, page)
    return summary
