"""``make test-colab``: every notebook as a learner's first session in a simulated Colab, and Colab's versions.

- :mod:`.runtime`: Colab's published runtime (``colab-runtime.txt``: the lines of its ``pip freeze`` that matter,
  with their source and date) and ``make colab-refresh``, which updates them from googlecolab/backend-info;
- :mod:`.image`: the simulated machine image, a Python 3.13 venv with exactly those versions and a
  ``google.colab`` module, built once into the cache; each session gets a hard-linked copy;
- :mod:`.session`: one notebook in one kernel, setup cell first, the one restart it may ask for, and the checks
  (cell errors, pip's conflicts, ``pip check``, widgets that Colab's ipywidgets 7 frontend cannot show);
- :mod:`.cli`: the command (``python -m tools.colab_sim``), the restart drill and the summary.
"""
