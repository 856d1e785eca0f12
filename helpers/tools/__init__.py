"""The tools behind the ``make`` targets; no lesson imports them.

- :mod:`helpers.tools.run_all`: ``make run-all`` (every notebook through papermill, with a report and a gallery)
  and ``make bench-run-all`` (its overhead).
- :mod:`helpers.tools.download`: ``make download`` (fetch the real models once, for an offline classroom).
- :mod:`helpers.tools.browser_check`: ``make test-browser`` (a run's gallery opened in headless Chromium).
- :mod:`helpers.tools.ui_check`: ``make test-ui`` (JupyterLab driven in Chromium: the playground, every lesson).
- :mod:`helpers.tools.envinfo`: what a run ran on (Python, packages, device, commit), recorded with each run.
- :mod:`helpers.tools.output_check`: what a saved notebook shows a reader (pictures, finished bars, no paths);
  used by ``make golden``, ``make test-browser`` and ``make test-ui``.

Who may import this: the tools themselves, the tests and ``python -m`` commands. They may use the development
pins (papermill, jinja2 through nbconvert, psutil, playwright); the lessons must stay importable with the runtime
pins alone.
"""
