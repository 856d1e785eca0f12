"""The Colab simulation's parts that run without building it: Colab's committed versions and their refresh, the
snapshot the setup cell clones, and what counts as a failure (pip's conflicts, widgets Colab cannot show).
`make test-colab` runs the whole simulation."""

import subprocess
from pathlib import Path

import nbformat
import pytest

from tools.colab_sim import cli, image, runtime, session

FREEZE = """\
# Do not modify this file directly
accelerate==1.14.0
google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz
ipywidgets==7.7.1
pillow==11.3.0
torch==2.11.0+cu128
"""


def git(folder: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "-C", str(folder), *identity, *args], check=True, capture_output=True)


def fake_backend_info(folder: Path, freeze: str, python: str = "3.13.15") -> Path:
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    (folder / "pip-freeze.gpu.txt").write_text(freeze)
    (folder / "os-info-gpu.txt").write_text(f"# generated\nUbuntu 22.04.5 LTS\nPython {python}\nR version 4\n")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "Upgrade things")
    return folder


def test_the_committed_runtime_names_its_source_date_and_python():
    text = runtime.RUNTIME_FILE.read_text()
    assert "# Source: https://github.com/googlecolab/backend-info (pip-freeze.gpu.txt, os-info-gpu.txt)" in text
    colab = runtime.read_runtime()
    assert len(colab.commit) == 40 and len(colab.date) == 10
    assert colab.python.startswith("3.13.")
    for name in ("torch", "diffusers", "transformers", "pillow", "matplotlib", "numpy", "ipywidgets", "peft", "gradio"):
        assert colab.version(name), f"colab-runtime.txt lacks {name}"
    assert "torch==2.11.0" in colab.requirements()  # +cu128 dropped: PyPI has the same release


def test_refresh_rewrites_the_lines_from_backend_info_keeping_the_names(tmp_path):
    path = tmp_path / "colab-runtime.txt"
    runtime.write_runtime(
        runtime.Runtime("3.12.1", runtime.SOURCE, "0" * 40, "2026-01-01", "old", {"pillow": "10.0"}), path
    )
    source = fake_backend_info(tmp_path / "backend-info", FREEZE)
    old, new = runtime.refresh(str(source), path, add=("torch",))
    assert old.pins == {"pillow": "10.0"}
    assert new.pins == {"pillow": "11.3.0", "torch": "2.11.0+cu128"} and new.python == "3.13.15"
    assert new.subject == "Upgrade things" and len(new.commit) == 40
    assert runtime.read_runtime(path) == new
    assert runtime.describe_refresh(old, new) == [
        "python 3.12.1 -> 3.13.15",
        "pillow 10.0 -> 11.3.0",
        "torch 2.11.0+cu128 (new)",
    ]


def test_refresh_names_the_packages_colab_no_longer_has(tmp_path):
    path = tmp_path / "colab-runtime.txt"
    runtime.write_runtime(runtime.Runtime("3.13.15", runtime.SOURCE, "0" * 40, "2026-01-01", "x", {"gone": "1"}), path)
    source = fake_backend_info(tmp_path / "backend-info", FREEZE)
    with pytest.raises(ValueError, match=r"no longer lists \['gone'\]: remove them from colab-runtime.txt"):
        runtime.refresh(str(source), path)
    assert runtime.read_runtime(path).pins == {"gone": "1"}  # left as it was


def test_a_runtime_file_without_its_header_is_refused(tmp_path):
    path = tmp_path / "colab-runtime.txt"
    path.write_text("pillow==11.3.0\n")
    with pytest.raises(ValueError, match="the header needs"):
        runtime.read_runtime(path)


def test_the_snapshot_holds_the_working_tree_as_git_would_push_it(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "main")
    (tree / ".gitignore").write_text("ignored.txt\n")
    (tree / "tracked.txt").write_text("committed\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "c")
    (tree / "tracked.txt").write_text("edited, not committed\n")
    (tree / "new.txt").write_text("untracked\n")
    (tree / "ignored.txt").write_text("ignored\n")
    url = session.snapshot_repository(tree, tmp_path / "snapshot")
    subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(tmp_path / "clone")], check=True)
    clone = tmp_path / "clone"
    assert (clone / "tracked.txt").read_text() == "edited, not committed\n"
    assert (clone / "new.txt").exists() and not (clone / "ignored.txt").exists()


FRONTEND = {"ipywidgets": "7.7.1", "base": "1.2.0", "controls": "1.5.0", "output": "1.0.0"}


def widget(model, module, version, view_version=None):
    return {
        "_model_name": model,
        "_model_module": module,
        "_model_module_version": version,
        "_view_module": module,
        "_view_module_version": view_version or version,
    }


def test_widgets_of_ipywidgets_7_pass():
    state = {
        "a": widget("FloatProgressModel", "@jupyter-widgets/controls", "1.5.0"),
        "b": widget("LayoutModel", "@jupyter-widgets/base", "1.2.0"),
        "c": widget("OutputModel", "@jupyter-widgets/output", "1.0.0"),
    }
    assert session.widget_problems(state, FRONTEND) == []


def test_widgets_that_colabs_frontend_cannot_show_fail():
    state = {
        "a": widget("FloatProgressModel", "@jupyter-widgets/controls", "2.0.0"),  # ipywidgets 8
        "b": widget("FloatProgressModel", "@jupyter-widgets/controls", "2.0.0"),  # reported once
        "c": widget("MapModel", "jupyter-leaflet", "^0.20.0"),
    }
    problems = session.widget_problems(state, FRONTEND)
    assert problems == [
        "widget FloatProgressModel (model @jupyter-widgets/controls 2.0.0): Colab's frontend is ipywidgets 7.7.1's, "
        "@jupyter-widgets/controls 1.5.0",
        "widget FloatProgressModel (view @jupyter-widgets/controls 2.0.0): Colab's frontend is ipywidgets 7.7.1's, "
        "@jupyter-widgets/controls 1.5.0",
        "widget MapModel (model jupyter-leaflet ^0.20.0): Colab's frontend has only ipywidgets' own widgets",
        "widget MapModel (view jupyter-leaflet ^0.20.0): Colab's frontend has only ipywidgets' own widgets",
    ]


def test_pips_conflict_report_is_recognised():
    cell = nbformat.v4.new_code_cell("setup")
    text = (
        "ERROR: pip's dependency resolver does not currently take into account all the packages that are installed."
        " This behaviour is the source of the following dependency conflicts.\n"
        "gradio 6.24.0 requires pillow<13.0,>=8.0, but you have pillow 13.0.0 which is incompatible.\n"
    )
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text)]
    assert session.PIP_CONFLICT.search(session.output_text(cell))
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Installed in 9 s: torchsde 0.2.6 (new).\n")]
    assert not session.PIP_CONFLICT.search(session.output_text(cell))


def test_pick_notebooks_by_number_or_name():
    assert [nb.stem for nb in cli.pick_notebooks(["02", "05_memory"])] == ["02_text_to_image", "05_memory"]
    assert len(cli.pick_notebooks(None)) == len(list((cli.ROOT / "notebooks").glob("*.ipynb")))
    with pytest.raises(SystemExit, match=r"colab_sim: --notebooks: no notebook .99.; use one of"):
        cli.pick_notebooks(["99"])


def test_session_folders_of_killed_runs_are_removed(tmp_path):
    dead = tmp_path / "sessions-999999999"
    (dead / "x").mkdir(parents=True)
    folder = cli.session_folder(tmp_path)
    assert folder.is_dir() and folder.name.endswith(str(__import__("os").getpid()))
    assert not dead.exists()


def test_a_missing_python_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("COLAB_SIM_PYTHON", str(tmp_path / "nothing"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit, match=r"needs Python 3\.99.*COLAB_SIM_PYTHON=/path/to/python3\.99"):
        image.find_python("3.99")


def test_pip_runs_as_in_colab_without_this_machines_settings(monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    env = image.pip_environment()
    assert "PIP_FIND_LINKS" not in env and env["PIP_CONFIG_FILE"] == __import__("os").devnull
    assert env["PIP_CERT"] == "/etc/ssl/certs/ca-certificates.crt"  # how to reach PyPI from here stays
