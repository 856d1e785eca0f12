"""``make run-all``: every notebook through papermill into ``runs/<UTC time>-<profile>/``, with a report.

- :mod:`.cli`: the command (``python -m tools.run_all``), its arguments and the main loop;
- :mod:`.params`: each notebook's parameters, the profile's parameter file and the command line, checked;
- :mod:`.jobs`: notebooks in parallel, one kernel each, CPU threads or one GPU per job;
- :mod:`.notebook`: one notebook through papermill, its log and its peak memory (:mod:`.kernel_probe`);
- :mod:`.state`: the run folder, resuming an interrupted run, ``runs/latest``;
- :mod:`.report`: the summary table and the HTML gallery (``templates/``);
- :mod:`.bench`: ``make bench-run-all``, run-all's overhead against plain scripts.
"""
