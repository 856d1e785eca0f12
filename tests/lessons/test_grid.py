import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import grid_shape, image_grid, labelled_grid


def solid(i: int, size=(8, 6)) -> Image.Image:
    return Image.new("RGB", size, (i * 20 % 256, 100, 200))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 5),
    w=st.integers(1, 12),
    h=st.integers(1, 12),
    data=st.data(),
)
def test_grid_size_and_cell_placement(rows, cols, w, h, data):
    n = data.draw(st.integers(1, rows * cols))
    imgs = [solid(i, (w, h)) for i in range(n)]
    grid = image_grid(imgs, rows=rows, cols=cols)
    assert grid.mode == "RGB"
    assert grid.size == (cols * w, rows * h)
    for i in range(rows * cols):
        corner = (i % cols * w, i // cols * h)
        expected = imgs[i].getpixel((0, 0)) if i < n else (0, 0, 0)  # empty cells stay black
        assert grid.getpixel(corner) == expected


def test_tutorial_default_is_two_rows_of_four():
    assert image_grid([solid(i) for i in range(8)]).size == (4 * 8, 2 * 6)


def test_other_modes_become_rgb():
    grid = image_grid([Image.new("L", (4, 4), 255), Image.new("RGBA", (4, 4), (1, 2, 3, 0))], rows=1, cols=2)
    assert grid.getpixel((0, 0)) == (255, 255, 255) and grid.getpixel((4, 0)) == (1, 2, 3)


@pytest.mark.parametrize(
    ("imgs", "rows", "cols", "message"),
    [
        ([], 2, 4, r"imgs is empty"),
        ([solid(0)] * 9, 2, 4, r"9 images do not fit a grid of rows=2 x cols=4 \(8 cells\).*rows=3"),
        ([solid(0)], 0, 4, r"rows must be an integer >= 1, got rows=0"),
        ([solid(0)], 2, -1, r"cols must be an integer >= 1, got cols=-1"),
        ([solid(0)], 2.0, 4, r"rows must be an integer >= 1, got rows=2.0"),
        ([solid(0, (8, 6)), solid(1, (6, 8))], 1, 2, r"same size, got sizes \[\(6, 8\), \(8, 6\)\]"),
    ],
)
def test_bad_grids_are_explained(imgs, rows, cols, message):
    with pytest.raises(ValueError, match=message):
        image_grid(imgs, rows=rows, cols=cols)


def test_labelled_grid_enlarges_small_images_and_adds_a_caption_strip():
    imgs = [solid(i, (64, 64)) for i in range(5)]
    grid = labelled_grid(imgs, [f"label {i}" for i in range(5)], cols=3)
    assert grid.size == (3 * 192, 2 * (192 + 24))
    assert grid.getpixel((10, 10)) == imgs[0].getpixel((0, 0))
    strip = grid.crop((0, 192, 192, 216)).convert("L")
    assert strip.getextrema() == (0, 255)  # black text on white


def test_labelled_grid_needs_one_label_per_image():
    with pytest.raises(ValueError, match="need one label per image, got 1 labels for 2 images"):
        labelled_grid([solid(0), solid(1)], ["only one"])


@pytest.mark.parametrize(
    ("n", "max_cols", "shape"),
    [(1, None, (1, 1)), (2, None, (1, 2)), (8, None, (2, 4)), (16, None, (4, 4)), (7, None, (1, 7)), (7, 4, (2, 4))],
)
def test_grid_shape_is_as_square_as_possible(n, max_cols, shape):
    assert grid_shape(n, max_cols) == shape
    rows, cols = shape
    assert rows * cols >= n


@pytest.mark.parametrize(
    ("n", "max_cols", "message"),
    [(0, None, r"n must be an integer >= 1 \(the number of images\), got n=0"), (4, 0, r"got max_cols=0")],
)
def test_bad_grid_shapes_are_named(n, max_cols, message):
    with pytest.raises(ValueError, match=message):
        grid_shape(n, max_cols)
