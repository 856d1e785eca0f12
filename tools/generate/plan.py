"""What to make and what is already there: items (one prompt at one seed), their files, and batches.

Item ``p0003-s5`` is the fourth prompt of the file at seed 5. Its image is ``images/p0003-s5-<prompt words>-0000.png``
with a JSON sidecar, written by :func:`helpers.save_images`, which never overwrites a file. An item counts as made
when its sidecar (written last) reads back and names a PNG that exists; anything else an interrupted run left
under the item's name is moved to ``incomplete/`` (never deleted) and the item is made again.

Example:
    >>> items = build_items([PromptRow("p.txt:1", "a red fox")], seeds=[0, 1])
    >>> [item.key for item in items]
    ['p0000-s0', 'p0000-s1']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .prompts import InputError, PromptRow

IMAGES = "images"
INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Settings:
    """What every image of a run shares: the model and how it is called."""

    profile: str
    model_id: str
    scheduler: str | None  # None: the model's own
    num_inference_steps: int
    guidance_scale: float
    height: int
    width: int
    batch_size: int


@dataclass(frozen=True)
class Item:
    """One image to make: a prompt of the file at one seed."""

    index: int  # its place among all items, prompt by prompt, seed by seed
    prompt_index: int
    source: str  # "prompts.csv:4"
    prompt: str
    negative_prompt: str | None
    seed: int

    @property
    def key(self) -> str:
        """The item's name, the start of its file names: ``p0003-s5``."""
        return f"p{self.prompt_index:04d}-s{self.seed}"

    @property
    def prefix(self) -> str:
        """What :func:`helpers.save_images` names the files after (it keeps 40 characters of it)."""
        return f"{self.key}-{self.prompt}"


def build_items(rows: list[PromptRow], seeds: list[int]) -> list[Item]:
    """Every prompt at every seed (a row's own seeds replace ``seeds`` for that row), prompt by prompt."""
    items = []
    for p, row in enumerate(rows):
        for seed in row.seeds or seeds:
            items.append(Item(len(items), p, row.source, row.prompt, row.negative_prompt, seed))
    return items


def expected_metadata(item: Item, settings: Settings) -> dict:
    """The sidecar values an item made with ``settings`` must have (the scheduler only when one was asked for)."""
    meta = {
        "prompt": item.prompt,
        "negative_prompt": item.negative_prompt,
        "seed": item.seed,
        "steps": settings.num_inference_steps,
        "guidance_scale": settings.guidance_scale,
        "width": settings.width,
        "height": settings.height,
        "model_id": settings.model_id,
    }
    if settings.scheduler:
        meta["scheduler"] = settings.scheduler
    return meta


def _sidecars(images: Path, item: Item) -> list[Path]:
    return sorted(images.glob(f"{item.key}-*.json"))


def made(images: Path, item: Item) -> dict | None:
    """The sidecar of the item's finished image (with ``file`` relative to the images folder), or None."""
    for sidecar in _sidecars(images, item):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("file") and (images / meta["file"]).is_file():
            return meta
    return None


def leftovers(images: Path, item: Item) -> list[Path]:
    """Files under the item's name that are not its finished image: what an interrupted run left."""
    done = made(images, item)
    keep = set() if done is None else {done["file"], Path(done["file"]).with_suffix(".json").name}
    return sorted(p for p in images.glob(f"{item.key}-*") if p.name not in keep)


def set_aside(out: Path, paths: list[Path]) -> list[Path]:
    """Move ``paths`` into ``out/incomplete/``, never over a file there; returns where they went."""
    if not paths:
        return []
    folder = out / INCOMPLETE
    folder.mkdir(exist_ok=True)
    moved = []
    for path in paths:
        target, n = folder / path.name, 1
        while target.exists():
            target, n = folder / f"{path.stem}.{n}{path.suffix}", n + 1
        path.rename(target)
        moved.append(target)
    return moved


def check_made(images: Path, item: Item, meta: dict, settings: Settings) -> None:
    """Refuse to go on when an item's image was made from another prompt or with other settings."""
    for key, wanted in expected_metadata(item, settings).items():
        if meta.get(key) != wanted:
            raise InputError(
                f"{images / meta['file']} was made for {item.source} with {key}={meta.get(key)!r}, but this run asks "
                f"for {key}={wanted!r}. Images are never overwritten: pass a new --out, or rerun with the settings "
                f"and prompts file that made this folder."
            )


def pending(out: Path, items: list[Item], settings: Settings) -> tuple[list[Item], dict[str, dict]]:
    """The items still to make, and the sidecars of those already made (checked against ``settings``)."""
    images = out / IMAGES
    todo, done = [], {}
    for item in items:
        meta = made(images, item) if images.is_dir() else None
        if meta is None:
            todo.append(item)
        else:
            check_made(images, item, meta, settings)
            done[item.key] = meta
    return todo, done


def batches(items: list, size: int) -> list[list]:
    """``items`` in consecutive batches of ``size`` (the last may be smaller).

    The batches are cut before they are shared between processes, so image *i* goes through the same batch
    whatever the number of processes, and comes out with the same pixels.
    """
    return [items[i : i + size] for i in range(0, len(items), size)]
