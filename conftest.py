"""The docstring examples of helpers/ run as tests, each in the namespace of a lesson.

pytest collects them with ``--doctest-modules`` over ``helpers`` (``[tool.pytest.ini_options]`` in pyproject.toml).
An example reads as a cell of a lesson after its setup cell: the names a notebook imports from :mod:`helpers` are
there, and ``pipe`` is the tiny pipeline, loaded once per module whose examples use it. Each example starts with
no active profile, so the tiny profile applies (``SD_PROFILE=tiny``, as in the tests) unless it activates another.
"""

import os
import re

# Before anything imports diffusers (doctest collection imports helpers, which imports it).
os.environ.setdefault("SD_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

USES_PIPE = re.compile(r"\bpipe\b")


@pytest.fixture(scope="module")
def doctest_pipe():
    """The tiny pipeline of one module's docstring examples (examples may change it, as a lesson would)."""
    from helpers import load_pipeline

    pipe = load_pipeline(profile="tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(autouse=True)
def _lesson_namespace(request):
    """For a docstring example only: the lesson's names, ``pipe`` if it uses it, and no active profile."""
    test = getattr(request.node, "dtest", None)  # a doctest item's examples; absent for other tests
    if test is None:
        yield
        return
    import helpers
    from helpers import profiles

    namespace = request.getfixturevalue("doctest_namespace")
    # Playground is left out: it loads ipywidgets when first asked for, and its own example imports it.
    namespace.update({name: getattr(helpers, name) for name in helpers.__all__ if name != "Playground"})
    if any(USES_PIPE.search(example.source) for example in test.examples):
        namespace["pipe"] = request.getfixturevalue("doctest_pipe")
    profiles.reset_profile()
    yield
    profiles.reset_profile()
