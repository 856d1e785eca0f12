"""The browser check's own logic, without a browser: what it counts as a notebook run well, its bounds, CI.

`make test-ui` itself drives JupyterLab in Chromium (see tools/ui_check/); it is too slow for `make test`.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tools import ROOT
from tools.ui_check import cli as ui_check
from tools.ui_check.bounds import CheckFailed, Deadline
from tools.ui_check.cli import Result, check_saved
from tools.ui_check.lab import Lab

PNG = {"image/png": "iVBORw0KGgo=", "text/plain": "<PIL.Image.Image>"}


def executed(*cells):
    nb = new_notebook(cells=list(cells))
    for count, cell in enumerate(nb.cells, 1):
        cell.execution_count = count
    return nb


def picture_cell():
    cell = new_code_cell("image")
    cell.outputs = [new_output("display_data", data=PNG)]
    return cell


def test_a_lesson_run_well_has_every_cell_run_and_its_pictures_shown():
    result = Result("02_text_to_image")
    check_saved(executed(new_code_cell("x = 1"), picture_cell(), picture_cell()), result, [True, True])
    assert (result.problems, result.code_cells, result.images, result.shown) == ([], 3, 2, 2)


def test_errors_unrun_cells_missing_and_unshown_pictures_are_problems():
    failing = new_code_cell("1/0")
    failing.outputs = [new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]
    nb = executed(failing, new_code_cell("after"), picture_cell())
    nb.cells[1].execution_count = None
    result = Result("03_schedulers")
    check_saved(nb, result, [False])
    assert result.problems == [
        "code cells [1] were not run",
        "errors: ['ZeroDivisionError: division by zero']",
        "the browser showed 0 of the notebook's 1 pictures",
    ]
    empty = Result("04_batching_and_grids")
    check_saved(executed(new_code_cell("x = 1")), empty, [])
    assert empty.problems == ["no pictures or charts in the saved notebook"]


def test_the_playground_needs_no_picture_in_the_saved_notebook():
    result = Result(ui_check.PLAYGROUND)
    check_saved(executed(new_code_cell("playground")), result, [True, True])  # its widgets' images
    assert result.problems == []


def test_every_wait_is_bounded_by_the_deadline():
    deadline = Deadline(100)
    assert deadline.left(30) == 30 and deadline.ms(5) == 5000
    deadline.end = time.monotonic() + 2
    assert deadline.left(30) <= 2
    deadline.end = time.monotonic() - 1
    with pytest.raises(CheckFailed, match=r"ran out of time \(--timeout\)"):
        deadline.left(30)


def test_the_lab_has_its_own_settings_token_and_the_tiny_profile(tmp_path):
    lab = Lab(tmp_path, threads=1)
    assert len(lab.token) == 32 and lab.url == f"http://127.0.0.1:{lab.port}"
    assert lab.env["SD_PROFILE"] == "tiny" and lab.env["HF_HUB_OFFLINE"] == "1" and lab.env["OMP_NUM_THREADS"] == "1"
    settings = Path(lab.env["JUPYTERLAB_SETTINGS_DIR"])
    assert settings.is_relative_to(tmp_path)
    tracker = json.loads((settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings").read_text())
    assert tracker == {"windowingMode": "none", "autoStartDefaultKernel": True}


def test_notebooks_are_chosen_by_number_or_name(tmp_path):
    for stem in ("00_playground", "01_load_model", "02_text_to_image"):
        nbformat.write(new_notebook(), tmp_path / f"{stem}.ipynb")
    assert [p.stem for p in ui_check.select(tmp_path, ["00", "02_text_to_image"])] == [
        "00_playground",
        "02_text_to_image",
    ]
    with pytest.raises(SystemExit, match=r"ui_check: --notebooks: no notebook '07'; use one of \['00_playground'"):
        ui_check.select(tmp_path, ["07"])


def test_the_playground_goes_first_then_the_lessons_that_took_longest_last_time(tmp_path):
    stems = ["00_playground", "01_load_model", "05_memory", "06_finetuned_openjourney", "07_making_it_fast"]
    paths = [tmp_path / f"{stem}.ipynb" for stem in stems]
    out = tmp_path / "ui-check"
    runs = tmp_path / "runs"

    # Nothing measured yet: name order after the playground.
    assert ui_check.last_seconds(out, runs) == {}
    assert [p.stem for p in ui_check.check_order(paths, {})] == stems

    # A tiny run of make run-all (make test-browser makes one before make test-ui in CI).
    run = runs / "20260101T000000Z-tiny"
    run.mkdir(parents=True)
    taken = {"01_load_model": 15.0, "05_memory": 61.0, "06_finetuned_openjourney": 24.0, "07_making_it_fast": 65.0}
    notebooks = {stem: {"seconds": seconds} for stem, seconds in taken.items()}
    (run / "run.json").write_text(json.dumps({"status": "complete", "profile": "tiny", "notebooks": notebooks}))
    assert ui_check.last_seconds(out, runs) == taken
    order = [p.stem for p in ui_check.check_order(paths, ui_check.last_seconds(out, runs))]
    assert order == ["00_playground", "07_making_it_fast", "05_memory", "06_finetuned_openjourney", "01_load_model"]

    # An earlier UI check wins over the run: its Run All times are the browser's own.
    (out / "20260102T000000Z").mkdir(parents=True)
    checked = [{"notebook": "05_memory", "figures": {"run_all_s": 90.0}}, {"notebook": "01_load_model", "figures": {}}]
    (out / "20260102T000000Z" / "summary.json").write_text(json.dumps({"notebooks": checked}))
    assert ui_check.last_seconds(out, runs) == {"05_memory": 90.0}
    order = [p.stem for p in ui_check.check_order(paths, ui_check.last_seconds(out, runs))]
    # Those it did not time count as longest (a new notebook is not known to be short).
    assert order == ["00_playground", "01_load_model", "06_finetuned_openjourney", "07_making_it_fast", "05_memory"]


def test_make_test_ui_runs_in_ci_after_the_browser_check():
    assert "test-ui: setup ## " in (ROOT / "Makefile").read_text()
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert steps.index("make test-ui") > steps.index("make test-browser")


def test_python_m_tools_ui_check_still_runs():
    done = subprocess.run([sys.executable, "-m", "tools.ui_check", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "usage: python -m tools.ui_check" in done.stdout
