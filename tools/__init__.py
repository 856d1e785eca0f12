"""The tools behind the ``make`` targets; no lesson imports them.

- :mod:`tools.run_all`: ``make run-all`` (every notebook through papermill, with a report and a gallery)
  and ``make bench-run-all`` (its overhead).
- :mod:`tools.generate`: ``make generate`` (every prompt of a file at every seed, on one or many GPUs
  through ``accelerate launch``, with a manifest and run-all's gallery).
- :mod:`tools.download`: ``make download`` (fetch the real models once, for an offline classroom) and
  ``make download CHECK=1`` (verify the cache offline).
- :mod:`tools.replica_nbval`: ``make test-replica`` (nbval of every golden on the SD1.5 replica).
- :mod:`tools.gpu_check`: ``make gpu-check`` (replica build, nbval, run-all and timings on a CUDA GPU).
- :mod:`tools.hub`: ``make hub`` (a local Hub serving the stand-in models; or a classroom's caching mirror).
- :mod:`tools.local_hub`: the local Hub itself (olah on 127.0.0.1 with the stand-in repositories), for ``make hub``
  and the tests of the user's download path.
- :mod:`tools.bench`: ``make bench`` (speed, memory and achieved FLOP/s under many settings, into a new
  ``runs/bench-<UTC time>-<profile>/``).
- :mod:`tools.browser_check`: ``make test-browser`` (a run's gallery opened in headless Chromium).
- :mod:`tools.ui_check`: ``make test-ui`` (JupyterLab driven in Chromium: the playground, every lesson).
- :mod:`tools.envinfo`: what a run ran on (Python, packages, device, commit), recorded with each run.
- :mod:`tools.output_check`: what a saved notebook shows a reader (pictures, finished bars, no paths);
  used by ``make golden``, ``make test-browser`` and ``make test-ui``.
- :mod:`tools.colab_sim`: ``make test-colab`` (every notebook in a simulated Colab: Python 3.13, Colab's
  published versions) and ``make colab-refresh`` (those versions, from googlecolab/backend-info).
- :mod:`tools.goldens`: ``make golden`` (the nbval references in ``tests/goldens/``, from the notebooks).
- :mod:`tools.train_tiny`: ``make train-tiny`` (remake the shipped tiny models from nothing).
- :mod:`tools.eval_tiny`: ``make eval-tiny`` (what the tiny models learned, judged from their pictures).
- :mod:`tools.common`: what several tools share: a free port, choosing notebooks by number, one notebook's result.

Who may import this: the tools themselves, the tests and ``python -m`` commands. They may use the development
pins (papermill, jinja2 through nbconvert, psutil, playwright); the lessons must stay importable with the runtime
pins alone.
"""

from pathlib import Path

# The repository root: the tools run from a clone, never from an installed package.
ROOT = Path(__file__).resolve().parent.parent
