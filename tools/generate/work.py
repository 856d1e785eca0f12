"""One process's share: load the pipeline once, make its batches, save each image as soon as its batch is done.

Each image has its own CPU generator seeded with its item's seed (as :func:`helpers.get_inputs` does), so its
starting noise does not depend on the batch it is in, the process that makes it or the device.

Example:
    >>> pipe = load(settings, device="cpu")  # doctest: +SKIP
    >>> records = make_batches(pipe, batches(items, 8), Path("out"), settings)  # doctest: +SKIP
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from helpers.inputs import get_inputs
from helpers.loading import load_pipeline
from helpers.outputs import save_images
from helpers.schedulers import set_scheduler

from .plan import IMAGES, Item, Settings, leftovers, made, set_aside


def load(settings: Settings, device: str):
    """The pipeline of ``settings`` on ``device``, with its scheduler, and without its own progress bar."""
    pipe = load_pipeline(settings.model_id, settings.profile, device=device)
    pipe.set_progress_bar_config(disable=True)
    if settings.scheduler:
        set_scheduler(pipe, settings.scheduler)
    return pipe


def item_inputs(item: Item, settings: Settings) -> dict:
    """The pipeline arguments for this item alone (what its metadata is read from)."""
    same = {"num_inference_steps": settings.num_inference_steps, "height": settings.height, "width": settings.width}
    inputs = get_inputs(batch_size=1, prompt=item.prompt, seed=item.seed, negative_prompt=item.negative_prompt, **same)
    inputs["guidance_scale"] = settings.guidance_scale
    return inputs


def batch_inputs(items: list[Item], settings: Settings) -> dict:
    """One call's arguments for several items: their prompts, and one generator per image, seeded per item.

    A prompt without a negative prompt gets ``""`` in a batch where others have one, which is what the
    pipeline uses for no negative prompt.
    """
    parts = [item_inputs(item, settings) for item in items]
    inputs = {**parts[0], "prompt": [p["prompt"][0] for p in parts], "generator": [p["generator"][0] for p in parts]}
    if any(item.negative_prompt is not None for item in items):
        inputs["negative_prompt"] = [item.negative_prompt or "" for item in items]
    return inputs


def make_batches(
    pipe,
    my_batches: list[list[Item]],
    out: Path,
    settings: Settings,
    process: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict]:
    """Make every item of ``my_batches`` that is not made yet; returns one manifest record per image made.

    Before a batch runs, its items are looked up again (a process of an earlier run may have finished them) and
    what an interrupted run left under their names is moved to ``incomplete/``.
    """
    images = out / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    host, device = socket.gethostname(), str(pipe.device)
    records = []
    for batch in my_batches:
        batch = [item for item in batch if made(images, item) is None]
        for item in batch:
            set_aside(out, leftovers(images, item))
        if not batch:
            continue
        start = time.perf_counter()
        pictures = pipe(**batch_inputs(batch, settings)).images
        seconds = (time.perf_counter() - start) / len(batch)
        for item, picture in zip(batch, pictures, strict=True):
            who = {"process": process, "host": host, "device": device, "seconds": round(seconds, 4)}
            (png,) = save_images(
                [picture],
                images,
                pipe=pipe,
                inputs=item_inputs(item, settings),
                prefix=item.prefix,
                item=item.key,
                source=item.source,
                model_id=settings.model_id,
                batch_size=len(batch),
                **who,
            )
            records.append(manifest_record(item, png.name, "made", who))
        if on_batch is not None:
            on_batch(len(batch))
    return records


def manifest_record(item: Item, file: str, status: str, who: dict) -> dict:
    """One line of ``manifest.jsonl``: the item, its image, whether this run made it, and who made it how fast."""
    return {
        "item": item.key,
        "index": item.index,
        "file": f"{IMAGES}/{file}",
        "status": status,
        "prompt": item.prompt,
        "negative_prompt": item.negative_prompt,
        "seed": item.seed,
        "source": item.source,
        **{key: who.get(key) for key in ("process", "host", "device", "seconds")},
    }
