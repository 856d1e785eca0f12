"""Image grids: many pictures in one.

``image_grid`` keeps the tutorial's signature. diffusers has ``diffusers.utils.make_image_grid(images, rows,
cols)``, which needs exactly ``rows * cols`` images and says only ``AssertionError`` otherwise; this one allows
fewer (the last cells stay empty) and says what is wrong.

Example:
    >>> from PIL import Image
    >>> image_grid([Image.new("RGB", (64, 64))] * 3, rows=2, cols=2).size
    (128, 128)
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .checks import check_count


def _check_grid(imgs: Sequence[Image.Image], rows: int, cols: int) -> None:
    check_count("rows", rows)
    check_count("cols", cols)
    if len(imgs) == 0:
        raise ValueError("imgs is empty: pass at least one image, e.g. image_grid(pipe(**inputs).images, 2, 4)")
    if len(imgs) > rows * cols:
        raise ValueError(
            f"{len(imgs)} images do not fit a grid of rows={rows} x cols={cols} ({rows * cols} cells); "
            f"use more rows or cols, e.g. rows={-(-len(imgs) // cols)}"
        )
    sizes = sorted({img.size for img in imgs})
    if len(sizes) > 1:
        raise ValueError(f"all images must have the same size, got sizes {sizes}; resize them first")


def grid_shape(n: int, max_cols: int | None = None) -> tuple[int, int]:
    """The ``(rows, cols)`` of a grid for ``n`` images, as square as possible with every cell used.

    ``cols`` is the smallest divisor of ``n`` that is at least its square root (8 gives 2 x 4, 16 gives 4 x 4);
    with ``max_cols``, rows grow instead (the last row may then have empty cells).

    Example:
        >>> grid_shape(8), grid_shape(16), grid_shape(2)
        ((2, 4), (4, 4), (1, 2))
    """
    check_count("n", n, about="the number of images")
    if max_cols is not None:
        check_count("max_cols", max_cols, about="or None")
    cols = next(c for c in range(1, n + 1) if n % c == 0 and c * c >= n)
    if max_cols is not None and cols > max_cols:
        cols = max_cols
    return -(-n // cols), cols


def image_grid(imgs: Sequence[Image.Image], rows: int = 2, cols: int = 4) -> Image.Image:
    """Paste images row by row into one RGB image of ``cols * w`` by ``rows * h``; unused cells stay black.

    Example:
        >>> image_grid([Image.new("RGB", (8, 8))] * 8).size
        (32, 16)
    """
    _check_grid(imgs, rows, cols)
    w, h = imgs[0].size
    grid = Image.new("RGB", size=(cols * w, rows * h))
    for i, img in enumerate(imgs):
        grid.paste(img.convert("RGB"), box=(i % cols * w, i // cols * h))
    return grid


def labelled_grid(
    imgs: Sequence[Image.Image],
    labels: Sequence[str],
    rows: int | None = None,
    cols: int = 4,
    min_width: int = 192,
) -> Image.Image:
    """Like :func:`image_grid`, with a caption under each image (for comparisons: schedulers, models).

    Images narrower than ``min_width`` are enlarged (pixel for pixel) so that the caption fits.

    Example:
        >>> labelled_grid([Image.new("RGB", (64, 64))] * 2, ["a", "b"], cols=2).size
        (384, 216)
    """
    if len(labels) != len(imgs):
        raise ValueError(f"need one label per image, got {len(labels)} labels for {len(imgs)} images")
    check_count("cols", cols)
    rows = -(-len(imgs) // cols) if rows is None else rows
    _check_grid(imgs, rows, cols)
    w, h = imgs[0].size
    scale = max(1, -(-min_width // w))
    w, h = w * scale, h * scale
    font = ImageFont.load_default(size=max(12, w // 18))
    strip = max(24, w // 8)
    captioned = []
    for img, label in zip(imgs, labels, strict=True):
        cell = Image.new("RGB", (w, h + strip), "white")
        cell.paste(img.convert("RGB").resize((w, h), Image.Resampling.NEAREST), (0, 0))
        ImageDraw.Draw(cell).text((4, h + 2), str(label), fill="black", font=font)
        captioned.append(cell)
    return image_grid(captioned, rows=rows, cols=cols)
