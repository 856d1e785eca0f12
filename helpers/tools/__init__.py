"""The tools behind the ``make`` targets; no lesson imports them.

- :mod:`helpers.tools.run_all`: ``make run-all`` (every notebook through papermill, with a report and a gallery)
  and ``make bench-run-all`` (its overhead).
- :mod:`helpers.tools.download`: ``make download`` (fetch the real models once, for an offline classroom).
- :mod:`helpers.tools.browser_check`: ``make test-browser`` (a run's gallery opened in headless Chromium).
- :mod:`helpers.tools.envinfo`: what a run ran on (Python, packages, device, commit), recorded with each run.
- :mod:`helpers.tools.colab_sim`: ``make test-colab`` (every notebook in a simulated Colab: Python 3.13, Colab's
  published versions) and ``make colab-refresh`` (those versions, from googlecolab/backend-info).

Who may import this: the tools themselves, the tests and ``python -m`` commands. They may use the development
pins (papermill, jinja2 through nbconvert, psutil); the lessons must stay importable with the runtime pins alone.
"""
