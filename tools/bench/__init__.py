"""``make bench``: speed, memory and achieved FLOP/s of one pipeline under many settings, into a new run folder.

- :mod:`.cases`: the rows of the benchmark (precision, scheduler and steps, batch, attention, memory, the fast
  path) and the small subset that ``QUICK=1`` runs;
- :mod:`.runner`: each row measured with warm-up and repetitions, its FLOPs counted, what cannot run here
  skipped with the reason, ``torch.compile`` bounded in time;
- :mod:`.report`: ``bench.json``, ``bench.md``, ``bench.png`` and ``environment.json``, written into
  ``runs/bench-<UTC time>-<profile>/``;
- :mod:`.cli`: the command, ``python -m tools.bench``.
"""
