"""Markdown tables from rows: the one place the lessons and the tools build a table.

A notebook shows one with ``IPython.display.Markdown(markdown_table(...))``; a tool writes one into a report.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

__all__ = ["markdown_table"]

Row = Sequence[object] | Mapping[str, object]


def markdown_table(rows: Iterable[Row], columns: Sequence[str] | None = None, *, right: Collection[str] = ()) -> str:
    """Return a Markdown table: a header, a rule, then one line per row.

    Args:
        rows: each row a sequence of cells in column order, or a mapping from column name to cell. Cells are
            written with ``str()``; format numbers before (``f"{seconds:.2f}"``). A ``|`` in a cell is escaped
            and a line break becomes a space, so a cell never breaks the table.
        columns: the header. Leave it out when the rows are mappings: the first row's keys are used.
        right: the columns aligned right (numbers read best that way); the others are aligned left.

    Raises:
        ValueError: no columns are given and the first row is not a mapping; a row has a different number of
            cells from the header; or ``right`` names a column that is not in the header.

    Example:
        >>> print(markdown_table([("plain", "1.50"), ("fp16", "0.75")], ["setting", "seconds"], right={"seconds"}))
        | setting | seconds |
        | --- | ---: |
        | plain | 1.50 |
        | fp16 | 0.75 |
        >>> print(markdown_table([{"notebook": "00_playground", "status": "ok"}]))
        | notebook | status |
        | --- | --- |
        | 00_playground | ok |
    """
    rows = list(rows)
    if columns is None:
        if not rows or not isinstance(rows[0], Mapping):
            raise ValueError(
                "markdown_table needs columns= unless the rows are mappings, "
                "e.g. markdown_table(rows, columns=['setting', 'seconds'])"
            )
        columns = list(rows[0])
    columns = list(columns)
    unknown = sorted(set(right) - set(columns))
    if unknown:
        raise ValueError(f"right={unknown} names no column; the columns are {columns}")
    lines = [_line(columns), _line("---:" if name in right else "---" for name in columns)]
    for number, row in enumerate(rows):
        cells = [row.get(name, "") for name in columns] if isinstance(row, Mapping) else list(row)
        if len(cells) != len(columns):
            raise ValueError(f"row {number} has {len(cells)} cells but there are {len(columns)} columns: {columns}")
        lines.append(_line(_cell(value) for value in cells))
    return "\n".join(lines)


def _cell(value: object) -> str:
    """One cell's text: ``|`` escaped, line breaks made spaces."""
    return " ".join(str(value).replace("|", r"\|").splitlines())


def _line(cells: Iterable[str]) -> str:
    """One table line from its cells' text."""
    return "| " + " | ".join(cells) + " |"
