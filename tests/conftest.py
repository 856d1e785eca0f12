"""Shared test setup: the tiny profile, offline, and one tiny pipeline for the whole session."""

import os

# Before anything imports diffusers or starts a notebook kernel (kernels inherit the environment).
os.environ.setdefault("SD_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

import helpers  # noqa: E402
from helpers import profiles  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_profile():
    """Each test starts with no active profile, so one test's choice never leaks into the next."""
    profiles.reset_profile()
    yield
    profiles.reset_profile()


@pytest.fixture(scope="session")
def tiny_pipe():
    """The tiny base pipeline, loaded through the real ``from_pretrained`` path. Tests must not modify it."""
    pipe = helpers.load_pipeline(profile="tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def fresh_tiny_pipe():
    """A tiny pipeline of one's own, for tests that change the scheduler or memory settings."""
    pipe = helpers.load_pipeline(profile="tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pytest_ignore_collect(collection_path, config):
    """With nbval on (``make test``), only the goldens are notebooks to test; any other .ipynb is data."""
    if collection_path.suffix == ".ipynb" and collection_path.parent.name != "goldens":
        return True
    return None
