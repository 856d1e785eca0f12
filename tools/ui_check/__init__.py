"""Click through the notebooks in JupyterLab, in a real browser: the playground, then every lesson top to bottom.

It copies ``notebooks/`` into a fresh folder, starts JupyterLab there (a free port, a random token, settings of its
own, the tiny profile, offline) and drives Debian's ``chromium`` with Playwright (from PyPI; its own browser
download is not used). In the playground it runs all cells, types a prompt, clicks Generate and times the picture,
clicks Save and checks the file and its metadata on disk, tries a bad value, and restores settings from the
history. Each lesson gets Run > Run All Cells and a save (Ctrl+S); the saved notebook must have every code cell
run, no error, and its pictures and charts, and the browser must have shown every one of them. Every wait is
bounded; a screenshot of each notebook lands in the output folder.

Usage:
    python -m tools.ui_check                      # everything (make test-ui)
    python -m tools.ui_check --notebooks 00 02    # some notebooks
    python -m tools.ui_check --headed             # watch it (needs a display)

The modules, each for one job:

- :mod:`.bounds`: how long each wait may take, the deadline of the whole check, and ``CheckFailed``;
- :mod:`.lab`: the JupyterLab server (its own folder, port, token and settings; the kernels' CPU time);
- :mod:`.page`: the page driver: a notebook open in the browser, run through the menus, saved with Ctrl+S;
- :mod:`.playground`: the playground script: type a prompt, Generate, Save, a bad value, the history;
- :mod:`.cli`: the whole check (``python -m tools.ui_check``): which notebooks, in which order, what counts as a
  notebook run well, and the summary.
"""
