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


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """A local Hugging Face Hub (olah, offline) serving the stand-in repositories on a free port of 127.0.0.1.

    For the test, ``HF_ENDPOINT`` points at it, ``HF_HOME`` is an empty folder (``local_hub.hf_home``) and
    ``HF_HUB_OFFLINE`` is ``0``. This process read those variables when it imported huggingface_hub, so run the
    clients in a subprocess, which inherits them. The server is waited for (30 s at most) and stopped by its PID;
    ``local_hub.kill()`` and ``local_hub.start()`` simulate a crash and a restart on the same port. Needs
    ``.venv-hub`` (``make hub-setup``; ``make test`` makes it).
    """
    from tools.local_hub import LocalHub

    hub = LocalHub(workdir=tmp_path / "olah", timeout=30)
    hub.hf_home = tmp_path / "hf_home"
    hub.hf_home.mkdir()
    hub.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HOME", str(hub.hf_home))
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        yield hub
    finally:
        hub.stop()
