"""nbval settings for the goldens: compare what checked cells print on stdout, never stderr.

stderr carries progress bars (their it/s change every run) and library warnings (their paths change with the
machine), so a comparison of it would fail for reasons that say nothing about the lesson.
"""


def pytest_collectstart(collector):
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)
