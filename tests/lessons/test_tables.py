"""Markdown tables (helpers/tables.py): the one way the lessons and the tools write a table."""

import pytest

from helpers.tables import markdown_table


def test_a_table_has_its_header_a_rule_with_alignment_and_a_line_per_row():
    table = markdown_table([["plain", 1.5, 3], ["fp16", 0.75, 3]], ["setting", "seconds", "images"], right={"seconds"})
    assert table.splitlines() == [
        "| setting | seconds | images |",
        "| --- | ---: | --- |",
        "| plain | 1.5 | 3 |",
        "| fp16 | 0.75 | 3 |",
    ]


def test_mappings_give_their_keys_as_columns_and_cells_cannot_break_the_table():
    rows = [{"prompt": "a | b", "seed": 0}, {"seed": 1, "prompt": "two\nlines"}]
    assert markdown_table(rows).splitlines()[2:] == [r"| a \| b | 0 |", "| two lines | 1 |"]
    assert markdown_table([], ["a"]) == "| a |\n| --- |"


def test_mistakes_are_named():
    with pytest.raises(ValueError, match=r"row 1 has 1 cells but there are 2 columns"):
        markdown_table([["a", "b"], ["c"]], ["x", "y"])
    with pytest.raises(ValueError, match=r"right=\['z'\] names no column"):
        markdown_table([], ["x"], right=["z"])
    with pytest.raises(ValueError, match=r"needs columns= unless the rows are mappings"):
        markdown_table([["a"]])
