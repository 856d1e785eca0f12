"""Progress bars that a saved notebook shows finished, not frozen at 0%.

diffusers draws its bars with ``tqdm.auto``, which in Jupyter is a widget. A widget's live state is not saved
with the notebook, so an executed notebook (papermill, ``make run-all``, nbconvert's HTML, GitHub's view) shows
the text the bar had when it appeared: ``0%| | 0/10``. :class:`NotebookProgressBar` is the same widget, shown
with a display id; when the loop ends it updates that display, so the saved text is the finished bar. Outside
Jupyter nothing changes: the bars are tqdm's plain text ones.

Importing :mod:`helpers` calls :func:`use_notebook_progress_bars`; the notebooks need not do anything.

Example:
    >>> from helpers.progress import use_notebook_progress_bars
    >>> use_notebook_progress_bars()  # outside Jupyter: False, nothing to change
    False
"""

from __future__ import annotations

import types

import tqdm.auto
from tqdm.notebook import tqdm as notebook_tqdm


class NotebookProgressBar(notebook_tqdm):
    """tqdm's notebook widget, whose saved text is its last state (it updates its display when it closes)."""

    def __init__(self, *args, **kwargs):
        show = kwargs.pop("display", True)
        super().__init__(*args, display=False, **kwargs)
        self._display = None
        if show and not self.disable and self.delay <= 0:
            from IPython.display import display

            self._display = display(self.container, display_id=True)
            self.displayed = True

    def close(self):
        super().close()
        if self._display is not None:
            # Re-send the widget with its final text: the live view stays the same, the saved text is finished.
            self._display.update(self.container)
            self._display = None


def in_notebook() -> bool:
    """Whether this is a Jupyter kernel with widgets (JupyterLab, Colab, papermill), where tqdm draws widgets."""
    return issubclass(tqdm.auto.tqdm, notebook_tqdm)


def use_notebook_progress_bars() -> bool:
    """In a Jupyter kernel, make the bars of diffusers and transformers :class:`NotebookProgressBar`.

    Each library took its tqdm at import: diffusers' pipelines (the denoising bar) the class itself, the logging
    modules of diffusers and transformers (the loading bars) the ``tqdm.auto`` module; each is pointed at the
    class here. Returns whether anything changed (False outside Jupyter).
    """
    if not in_notebook():
        return False
    from diffusers.pipelines import pipeline_utils
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    pipeline_utils.tqdm = NotebookProgressBar
    diffusers_logging.tqdm_lib = transformers_logging.tqdm_lib = types.SimpleNamespace(tqdm=NotebookProgressBar)
    return True
