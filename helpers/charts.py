"""Bar charts of measurements, and figures as images (to save them beside the pictures they describe).

The figures are made without ``pyplot``, so nothing piles up in its global state. Without pyplot no Jupyter
display formatter knows them, so :class:`Chart` renders itself as a PNG: a notebook shows one by ending a cell
with it, and the picture is saved in the notebook (JupyterLab, Colab, papermill, nbconvert, GitHub).

Example:
    >>> fig = bar_chart(["PNDM", "DPM-Solver"], {"seconds per image": [2.0, 0.8]}, title="Time per image")
    >>> figure_to_image(fig).mode
    'RGB'
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from PIL import Image


class Chart(Figure):
    """A matplotlib figure that Jupyter shows as a picture (``_repr_png_``), without pyplot."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)

    def __repr__(self) -> str:
        return f"chart: {self.get_suptitle()}" if self.get_suptitle() else "chart"


def bar_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    value_format: str | Mapping[str, str] = "{:.2f}",
) -> Chart:
    """Horizontal bars, one panel per series (side by side), one bar per label, each bar labelled with its value.

    Args:
        labels: one name per bar, e.g. the schedulers.
        series: ``{axis title: values}``, e.g. ``{"seconds per image": [...], "peak MiB": [...]}``; each list has
            one value per label.
        title: the figure's title.
        value_format: how the number at the end of each bar is written, for every series or as
            ``{axis title: format}``, e.g. ``{"peak MiB": "{:,.0f}"}`` (series not named there get ``"{:.2f}"``).

    Example:
        >>> len(bar_chart(["a", "b"], {"x": [1, 2], "y": [3, 4]}).axes)
        2
    """
    labels = [str(label) for label in labels]
    if not labels:
        raise ValueError("labels is empty: give one label per bar, e.g. [run.label for run in runs]")
    if not series:
        raise ValueError('series is empty: give at least one {"axis title": values}')
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(
                f"series {name!r} has {len(values)} values for {len(labels)} labels; give one value per label"
            )
    height = 1.2 + 0.35 * len(labels)
    fig = Chart(figsize=(5.5 * len(series), height), layout="constrained")
    axes = fig.subplots(1, len(series), sharey=True, squeeze=False)[0]
    positions = list(range(len(labels)))
    for ax, (name, values) in zip(axes, series.items(), strict=True):
        values = [float(v) for v in values]
        fmt = value_format if isinstance(value_format, str) else value_format.get(name, "{:.2f}")
        bars = ax.barh(positions, values, color="tab:blue")
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=8)
        ax.set_xlabel(name)
        ax.set_xlim(0, max(max(values), 1e-9) * 1.25)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, labels)
    axes[0].invert_yaxis()  # first label on top, as in the table
    if title:
        fig.suptitle(title)
    return fig


def figure_to_image(fig: Figure, dpi: int = 100) -> Image.Image:
    """Render a figure to an RGB PIL image, e.g. to save it with :func:`helpers.save_images`.

    Example:
        >>> figure_to_image(Figure(figsize=(2, 1)), dpi=50).size
        (100, 50)
    """
    with Image.open(io.BytesIO(figure_png(fig, dpi))) as image:
        return image.convert("RGB")


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (what a notebook stores to show it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
