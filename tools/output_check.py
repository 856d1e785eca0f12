"""What an executed notebook shows a reader: pictures as pictures, finished progress bars, no machine details.

A saved notebook is read without its kernel (JupyterLab after a restart, nbconvert's HTML, GitHub). This check
finds what such a reader would see wrong in the outputs of one executed notebook:

- a figure or a picture shown as text (``<Figure size 550x260 with 1 Axes>``, ``<PIL.Image.Image ...>``) because
  nothing rendered it as ``image/png``;
- an object's repr with its memory address (``object at 0x7f...``);
- a path into the installed packages (``site-packages``), as warnings from third-party code print;
- a progress bar saved at 0% of a loop that ran (``0%| | 0/10``): a widget whose final state was not saved.

Used by ``make golden`` (before a reference is written), ``make test-browser`` (on a fresh run-all) and the tests.

Example:
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("fig")])
    >>> nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<Figure size 550x260>"})]
    >>> output_problems(nb)
    ['cell 0: shows a figure or picture as text, not as a picture: <Figure size 550x260>']
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# A figure, a PIL image or another picture object whose repr reached the reader instead of its picture.
PICTURE_REPR = re.compile(r"<(Figure size [^>]*|PIL\.[\w.]*Image[^>]*|matplotlib\.[^>]*)>")
ADDRESS = re.compile(r"\bobject at 0x[0-9a-fA-F]+")
PACKAGE_PATH = re.compile(r"[\w./\\-]*(site|dist)-packages[\w./\\-]*")
# tqdm's text: "  0%|          | 0/10 [00:00<?, ?it/s]"; group 1 is done, group 2 the total.
PROGRESS = re.compile(r"\b\d{1,3}%\|[^|\n]*\|\s*(\d+)/(\d+)\b")


def output_texts(output) -> list[str]:
    """The texts a reader sees for one output (a stream's last state of each line, a display's plain text)."""
    if output.get("output_type") == "stream":
        return [line.rsplit("\r", 1)[-1] for line in output.get("text", "").split("\n")]
    if output.get("output_type") == "error":
        return ["\n".join(output.get("traceback", []))]
    data = output.get("data", {})
    return [str(data.get(mime, "")) for mime in ("text/plain", "text/html", "text/markdown") if mime in data]


def cell_problems(cell) -> list[str]:
    """What is wrong in one code cell's outputs (empty: nothing)."""
    problems = []
    for output in cell.get("outputs", []):
        has_picture = any(mime.startswith("image/") for mime in output.get("data", {}))
        for text in output_texts(output):
            found = PICTURE_REPR.search(text)
            if found and not has_picture:
                problems.append(f"shows a figure or picture as text, not as a picture: {found.group(0)}")
            if found := ADDRESS.search(text):
                problems.append(f"shows an object's memory address: {found.group(0)}")
            if found := PACKAGE_PATH.search(text):
                problems.append(f"shows a path into the installed packages: {found.group(0)}")
            for done, total in PROGRESS.findall(text):
                if int(total) > 0 and int(done) == 0:
                    problems.append(f"shows a progress bar saved at 0/{total}, not its finished state")
    return list(dict.fromkeys(problems))


def output_problems(notebook) -> list[str]:
    """Every problem in an executed notebook's outputs, as ``"cell N: what"`` (empty: it reads well)."""
    return [
        f"cell {index}: {problem}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for problem in cell_problems(cell)
    ]


def main(argv: list[str]) -> int:
    """``python -m tools.output_check NOTEBOOK ...``: print the problems, exit 1 if there are any."""
    import nbformat

    failed = 0
    for path in map(Path, argv):
        problems = output_problems(nbformat.read(path, as_version=4))
        failed += bool(problems)
        print(f"{path}: " + ("ok" if not problems else "\n  " + "\n  ".join(problems)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
