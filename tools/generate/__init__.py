"""``make generate``: every prompt of a file at every seed, into images with metadata, a manifest and a gallery.

- :mod:`.cli`: the command (``python -m tools.generate``, or under ``accelerate launch``), its checks and
  the sharing of the work between processes;
- :mod:`.prompts`: the prompts file (text, CSV, JSONL) and seed lists, with errors naming the file and line;
- :mod:`.plan`: the items (a prompt at a seed), their files, what is already made, and the batches;
- :mod:`.work`: one process's share: load the model once, make its batches, save each image;
- :mod:`.report`: ``manifest.jsonl``, ``summary.json`` and run-all's gallery as ``index.html``;
- :mod:`.bench`: ``make bench-generate``, images per second with 1 and 2 processes against a plain loop.
"""
