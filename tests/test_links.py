"""Every web link in a lesson goes to a page someone checked, and says when.

docs/reports/links.md lists each external link the notebooks use, what it shows and the day it was last opened and
checked against what the lesson says of it. This test fetches nothing (no machine here may reach those sites): it
fails when a lesson links to a page missing from that list, when the list keeps a link no lesson uses any more, or
when a row has no date. Pages move:
when one does, fix the lesson and its row.
"""

import json
import re
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "docs" / "reports" / "links.md"
URL = re.compile(r"https?://[^\s)\"'<>`\]\\]+")
# The project's own: its Colab badges (one per notebook, kept right by tests/lessons/test_notebooks.py) and its
# repository, which the setup cells clone.
OWN = re.compile(
    r"^https://(colab\.research\.google\.com/(github/|assets/colab-badge\.svg$)"
    r"|github\.com/sd-tutorial/stable-diffusion-notebooks$)"
)
ROW = re.compile(r"^\|\s*<?(https?://[^\s|>]+)>?\s*\|(.*)\|\s*(\d{4}-\d{2}-\d{2})\s*\|\s*$", re.MULTILINE)


def lesson_links() -> dict[str, list[str]]:
    """Each external link in notebooks/*.ipynb (markdown and code) -> the notebooks that use it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for url in URL.findall(source):
                url = url.rstrip(".,;:")
                if not OWN.match(url):
                    found.setdefault(url, []).append(path.name)
    return found


def verified() -> dict[str, date]:
    """The list's links and the day each was checked."""
    return {url: date.fromisoformat(day) for url, _, day in ROW.findall(LIST.read_text(encoding="utf-8"))}


def test_every_lesson_link_was_checked():
    listed = verified()
    missing = {url: notebooks for url, notebooks in lesson_links().items() if url not in listed}
    assert not missing, f"lesson links {LIST.relative_to(ROOT)} does not list (check each, then add it): {missing}"


def test_the_list_keeps_no_link_that_no_lesson_uses():
    unused = sorted(set(verified()) - set(lesson_links()))
    assert not unused, f"{LIST.relative_to(ROOT)} lists links no lesson uses any more: {unused}"


def test_every_row_has_a_link_a_description_and_a_date():
    text = LIST.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| http") or line.startswith("| <http")]
    assert rows, "the list has no rows"
    assert len(rows) == len(ROW.findall(text)), "a row lacks its description or an ISO date (YYYY-MM-DD)"
    assert all(day <= date.today() for day in verified().values()), "a check dated in the future"


def test_links_are_found_in_markdown_and_in_code():
    cell = "See [the guide](https://huggingface.co/docs/diffusers/index). `url = 'https://example.org/a'`."
    assert URL.findall(cell) == ["https://huggingface.co/docs/diffusers/index", "https://example.org/a"]
    assert OWN.match("https://colab.research.google.com/github/o/r/blob/main/notebooks/01_load_model.ipynb")
    assert not OWN.match("https://colab.research.google.com/notebooks/intro.ipynb")
