"""What several tools share (tools/common.py): a free port, choosing notebooks, one notebook's result."""

import socket
from pathlib import Path

import pytest

from tools.common import NotebookResult, free_port, match_notebook, select_notebooks

NOTEBOOKS = [Path(f"{stem}.ipynb") for stem in ("00_playground", "02_text_to_image", "05_memory")]


def test_a_free_port_can_be_bound():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


@pytest.mark.parametrize("key", ["05", "05_memory", "05_memory.ipynb", "notebooks/05_memory.ipynb", 5])
def test_a_notebook_is_named_by_number_name_file_or_path(key):
    assert match_notebook(key, [p.stem for p in NOTEBOOKS]) == "05_memory"


def test_selection_keeps_the_given_order_and_names_what_is_there_when_nothing_matches():
    assert select_notebooks(NOTEBOOKS, None) == NOTEBOOKS
    assert [p.stem for p in select_notebooks(NOTEBOOKS, ["05", "00", "05_memory"])] == ["00_playground", "05_memory"]
    with pytest.raises(ValueError, match=r"--notebooks: no notebook '5_mem'; use one of \['00_playground', "):
        select_notebooks(NOTEBOOKS, ["00", "5_mem"])
    with pytest.raises(ValueError, match=r"^nbval: no notebook '9'"):
        select_notebooks(NOTEBOOKS, ["9"], where="nbval")


def test_one_result_serves_run_all_and_test_replica():
    ran = NotebookResult("02_text_to_image", "ok", 8.1, 612 * 2**20, "process RSS", images=4)
    assert ran.ok and ran.as_dict()["images"] == 4 and ran.as_dict()["error"] is None
    assert not NotebookResult("05_memory", "failed", 1.0).ok
