"""What ``make bench`` writes into its run folder: ``bench.json`` (every row, every repetition), ``bench.md`` (the
table, the rows that did not run and why, the machine), ``bench.png`` (the chart, made with the notebooks' own
:func:`helpers.bar_chart`) and ``environment.json`` (as ``make run-all`` records it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from helpers.charts import bar_chart, figure_to_image

from ..envinfo import environment_record

COLUMNS = (
    "| group | setting | precision | steps | batch | s / image | s / call: median (min to max) | it/s "
    "| UNet TFLOP/s | % of peak | peak MiB | compile s |"
)


def _number(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return fmt.format(value)


def table(rows: list[dict]) -> str:
    """The Markdown table of the rows that ran."""
    lines = [COLUMNS, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["status"] != "ok":
            continue
        seconds = f"{row['median_seconds']:.3g} ({min(row['seconds']):.3g} to {max(row['seconds']):.3g})"
        lines.append(
            f"| {row['group']} | {row['label']} | {row['precision']} | {row['steps_label']} | {row['batch_size']} "
            f"| {row['seconds_per_image']:.3g} | {seconds} | {_number(row['median_iterations_per_second'], '{:.3g}')} "
            f"| {_number(row['unet_tflops_per_second'], '{:.3g}')} | {_number(row['peak_share_percent'], '{:.1f}')} "
            f"| {_number(row['peak_mib'], '{:,.0f}')} | {_number(row['compile_seconds'], '{:.1f}')} |"
        )
    return "\n".join(lines)


def not_run(rows: list[dict]) -> str:
    """The rows that were skipped or failed, each with its reason."""
    lines = [f"- **{row['label']}** ({row['status']}): {row['reason']}" for row in rows if row["status"] != "ok"]
    return "\n".join(lines) or "Every row ran."


def markdown(rows: list[dict], meta: dict) -> str:
    """``bench.md``: what ran where, the table, what did not run, and how to read it."""
    ok = [row for row in rows if row["status"] == "ok"]
    kind = ok[0]["memory_kind"] if ok else "n/a"
    peak = meta["peak"]
    peak_text = (
        f"{peak['tflops']:g} TFLOP/s ({peak['source']})"
        if peak["tflops"]
        else "unknown for this device: pass --peak-tflops to fill the column"
    )
    step = ok[0]["unet_step_tflop"] if ok else None
    return (
        "\n".join(
            [
                f"# Benchmark: {meta['profile']} profile, {meta['height']} x {meta['width']}",
                "",
                f"- Machine: {meta['device']}; CPU: {meta['cpu']}; PyTorch threads: {meta['cpu_threads']}",
                f"- Created: {meta['created']} (UTC); torch {meta['torch']}, diffusers {meta['diffusers']}",
                f"- Model: {meta['model']}"
                + ("" if meta["real_weights"] else " (a stand-in for the real model: its timings, not its pictures)"),
                f"- Each row: {meta['warmup']} warm-up call(s) of one step (two when it compiles), then {meta['reps']} "
                f"timed calls; the median, and the fastest to the slowest" + (" (QUICK=1)" if meta["quick"] else ""),
                f"- Peak memory: {kind}; peak FLOP/s of this device (dense fp16): {peak_text}",
                "",
                table(rows),
                "",
                "## Not run",
                "",
                not_run(rows),
                "",
                "## How to read it",
                "",
                "- *it/s*: denoising steps per second, clocked from the end of the first step to the end of the last "
                "(text encoder, VAE decode and safety checker excluded); *s / image* is the whole call per picture.",
                "- *UNet TFLOP/s*: the FLOPs of one guided step (counted by `torch.utils.flop_counter.FlopCounterMode` "
                "on the meta device"
                + (f"; {step:.4g} TFLOP at batch 1 here" if step is not None else "")
                + ") times it/s. *% of peak*: that over the device's dense fp16 peak, for every row whatever its "
                "precision.",
                "- *compile s*: how much longer the first warm-up call took than the second, for rows that compile.",
                "- Each row changes one thing against `baseline` (memory rows against the largest `batch` row).",
            ]
        )
        + "\n"
    )


def chart(rows: list[dict], title: str):
    """Seconds per picture, it/s and peak memory of the rows that ran, one bar each."""
    ok = [row for row in rows if row["status"] == "ok"]
    if not ok:
        return None
    kind = ok[0]["memory_kind"]
    labels = [f"{row['label']} (batch {row['batch_size']})" if row["batch_size"] != 1 else row["label"] for row in ok]
    return bar_chart(
        labels,
        {
            "seconds per picture": [row["seconds_per_image"] for row in ok],
            "denoising it/s": [row["median_iterations_per_second"] for row in ok],
            f"peak MiB ({kind})": [row["peak_mib"] for row in ok],
        },
        title=title,
        value_format={"seconds per picture": "{:.3g}", "denoising it/s": "{:.3g}", f"peak MiB ({kind})": "{:,.0f}"},
    )


def write(folder: Path, rows: list[dict], meta: dict) -> dict[str, Path]:
    """Write the four files into ``folder`` (a new, empty run folder) and return their paths."""
    paths = {name: folder / name for name in ("bench.json", "bench.md", "bench.png", "environment.json")}
    paths["bench.json"].write_text(json.dumps({**meta, "rows": rows}, indent=2, default=str) + "\n", encoding="utf-8")
    paths["bench.md"].write_text(markdown(rows, meta), encoding="utf-8")
    figure = chart(rows, f"{meta['profile']} profile, {meta['height']} x {meta['width']}, {meta['device']}")
    if figure is None:
        del paths["bench.png"]
    else:
        figure_to_image(figure).save(paths["bench.png"])
    record = environment_record(meta["profile"])
    paths["environment.json"].write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return paths
