"""Saving images with everything needed to make them again.

Each PNG carries its prompt, negative prompt, seed, steps, guidance scale, scheduler, model and size as PNG
text metadata, and gets a JSON sidecar with the same facts. Nothing is ever overwritten: a name that is taken
gets the next free number. A lesson binds the folder, its pipeline and its name once with :func:`image_saver`,
then saves each picture with ``save(images, inputs)``.

Example:
    >>> inputs = get_inputs(batch_size=2)
    >>> images = pipe(**inputs).images
    >>> [p.name for p in save_images(images, "out", pipe=pipe, inputs=inputs, prefix="chief")]  # doctest: +SKIP
    ['chief-0000.png', 'chief-0001.png']
    >>> save = image_saver("out", pipe, notebook="02_text_to_image")  # doctest: +SKIP
    >>> [p.name for p in save(images, inputs, prefix="chief")]  # doctest: +SKIP
    ['chief-0002.png', 'chief-0003.png']
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .standins.tiny import KINDS, models_root

METADATA_KEYS = (
    "prompt",
    "negative_prompt",
    "seed",
    "steps",
    "guidance_scale",
    "scheduler",
    "model",
    "width",
    "height",
)


def model_name(pipe) -> str:
    """A readable name for the pipeline's model: its Hub id or folder, or ``tiny:base`` for a tiny test model."""
    where = str(getattr(pipe, "name_or_path", "") or pipe.config.get("_name_or_path", ""))
    path = Path(where)
    for kind, about in KINDS.items():
        if path == models_root() / about["folder"]:
            return f"tiny:{kind}"
    return where


def _default_guidance(pipe) -> float | None:
    param = inspect.signature(type(pipe).__call__).parameters.get("guidance_scale")
    return None if param is None else param.default


def _pick(value, i: int):
    return value[i] if isinstance(value, (list, tuple)) else value


def image_metadata(pipe=None, inputs: dict | None = None, index: int = 0, **extra) -> dict:
    """The metadata of image ``index`` made by ``pipe(**inputs)``; ``extra`` adds or overrides keys."""
    inputs = inputs or {}
    meta = dict.fromkeys(METADATA_KEYS)
    meta["prompt"] = _pick(inputs.get("prompt"), index)
    meta["negative_prompt"] = _pick(inputs.get("negative_prompt"), index)
    generator = _pick(inputs.get("generator"), index)
    meta["seed"] = generator.initial_seed() if generator is not None else None
    meta["steps"] = inputs.get("num_inference_steps")
    meta["guidance_scale"] = inputs.get("guidance_scale", _default_guidance(pipe) if pipe is not None else None)
    if pipe is not None:
        meta["scheduler"] = type(pipe.scheduler).__name__
        meta["model"] = model_name(pipe)
    meta.update(extra)
    return meta


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "image"


def _exclusive(folder: Path, stem: str) -> tuple[Path, Path]:
    """Claim the first free ``stem-NNNN.png`` (and its ``.json``), never touching an existing file."""
    n = 0
    while True:
        png = folder / f"{stem}-{n:04d}.png"
        sidecar = png.with_suffix(".json")
        if not png.exists() and not sidecar.exists():
            try:
                with open(png, "xb"):
                    pass
            except FileExistsError:
                pass
            else:
                return png, sidecar
        n += 1


def save_images(
    images: Sequence[Image.Image] | Image.Image | Figure,
    output_dir: str | Path | None,
    *,
    pipe=None,
    inputs: dict | None = None,
    prefix: str | None = None,
    **extra,
) -> list[Path]:
    """Save each image as PNG with its metadata, plus a JSON sidecar. Returns the PNG paths.

    Args:
        images: what ``pipe(...).images`` returned, one picture, or a chart (a matplotlib figure, saved as the
            picture it shows).
        output_dir: the folder (made if missing); None saves nothing and returns ``[]``, so notebooks can call
            this unconditionally and save only when asked to.
        pipe, inputs: the pipeline and the arguments it was called with; the metadata is read from them.
        prefix: the start of each file name; by default made from the prompt.
        **extra: more metadata, e.g. ``notebook="02_text_to_image"``; it overrides what was read.
    """
    if output_dir is None:
        return []
    if isinstance(images, Figure):
        from .charts import figure_to_image

        images = figure_to_image(images)
    if isinstance(images, Image.Image):
        images = [images]
    folder = Path(output_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for i, image in enumerate(images):
        meta = image_metadata(pipe, inputs, i, **extra)
        meta["width"], meta["height"] = image.size
        meta["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        png, sidecar = _exclusive(folder, _slug(prefix or meta.get("prompt") or "image"))
        info = PngInfo()
        for key, value in meta.items():
            if value is not None:
                info.add_text(key, str(value))
        image.save(png, pnginfo=info)
        with open(sidecar, "x", encoding="utf-8") as f:
            json.dump({"file": png.name, **meta}, f, indent=2)
        saved.append(png)
    return saved


def image_saver(output_dir: str | Path | None, pipe=None, **metadata) -> Callable[..., list[Path]]:
    """:func:`save_images` with the folder, the pipeline and this notebook's metadata bound once.

    Returns ``save(images, inputs=None, *, pipe=None, prefix=None, **extra)``, which saves like
    ``save_images(images, output_dir, pipe=pipe, inputs=inputs, prefix=prefix, **metadata, **extra)`` and returns
    the PNG paths; like it, it saves nothing when ``output_dir`` is None and never overwrites a file. The
    pipeline's scheduler and model are recorded with the ``inputs`` it was called with: a picture saved without
    them (a grid of several settings, a chart) carries only ``prefix``, ``metadata`` and ``extra``.

    Args:
        output_dir: the folder (made on the first save); None: ``save`` saves nothing and returns ``[]``.
        pipe: the pipeline that makes the pictures; ``save(..., pipe=other)`` names another for one call.
        **metadata: facts for every picture, e.g. ``notebook="02_text_to_image"``; ``extra`` overrides them.

    Example:
        >>> save = image_saver("out", pipe, notebook="02_text_to_image")  # doctest: +SKIP
        >>> save(pipe(**inputs).images, inputs)  # doctest: +SKIP
        [PosixPath('out/portrait-photo-of-a-old-warrior-chief-0000.png')]
        >>> save(chart, prefix="speed-chart", content="seconds per picture")  # doctest: +SKIP
        [PosixPath('out/speed-chart-0000.png')]
    """
    bound_pipe = pipe

    def save(images, inputs: dict | None = None, *, pipe=None, prefix: str | None = None, **extra) -> list[Path]:
        """Save ``images`` made from ``inputs`` (none for a grid or a chart); returns the PNG paths."""
        maker = pipe if pipe is not None else (bound_pipe if inputs is not None else None)
        return save_images(images, output_dir, pipe=maker, inputs=inputs, prefix=prefix, **{**metadata, **extra})

    return save


def read_metadata(path: str | Path) -> dict:
    """The text metadata stored in a PNG by :func:`save_images` (values as strings)."""
    with Image.open(path) as img:
        return dict(img.text)
