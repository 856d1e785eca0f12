"""The documentation stays true to the tree: links that resolve, `make` targets that exist, a short README.

It reads README.md, CONTRIBUTING.md, every page under docs/ and the markdown cells of notebooks/*.ipynb:

- a relative link must point at a file or folder that exists, resolved from the file that holds it (links with a
  scheme, such as http(s), are left alone; a #fragment is cut off first);
- a #fragment into a Markdown page, or a pure #anchor within one, must name one of that page's headings, as GitHub
  spells its anchors;
- every `make <target>` written as code (an inline code span or a fenced block) must be a target of the Makefile;
- README.md stays at most 8 KiB.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 8192  # bytes: the learner's front page stays short; the rest lives in docs/

FENCE = re.compile(r"^( {0,3})(```|~~~)[^\n]*\n.*?^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# `](target)` catches inline links and images, nested ones too (a badge inside a link); `[label]: target` the
# reference definitions; href/src the HTML ones.
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# A command: `make` opening a line or a code span, or after a shell prompt ($) or an operator (&&, ;).
MAKE = re.compile(r"(?:^|&&|;|\$ )[ \t]*make[ \t]+(.+)", re.MULTILINE)
OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "<"}
TARGET = re.compile(r"^[A-Za-z0-9][\w.-]*$")
MAKEFILE_TARGET = re.compile(r"^([A-Za-z0-9][\w.-]*(?:[ \t]+[A-Za-z0-9][\w.-]*)*)[ \t]*:(?!=)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def markdown_sources() -> dict[Path, str]:
    """Every document a reader follows links in: path -> its Markdown text."""
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return {path: path.read_text(encoding="utf-8") for path in files if path.is_file()}


def notebook_markdown() -> dict[Path, str]:
    """The markdown cells of each notebook, joined."""
    found = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        found[path] = "\n\n".join(
            "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for cell in cells
            if cell["cell_type"] == "markdown"
        )
    return found


def all_sources() -> dict[Path, str]:
    return markdown_sources() | notebook_markdown()


def without_code(text: str) -> str:
    """The text with fenced blocks and code spans blanked, so that code showing Markdown is not read as links."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return CODE_SPAN.sub(" ", text)


def code_of(text: str) -> list[str]:
    """The fenced blocks' bodies and the inline code spans: where a command is written."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    spans = [m.group(2) for m in CODE_SPAN.finditer(FENCE.sub("", text))]
    return blocks + spans


def links(text: str) -> list[str]:
    prose = without_code(text)
    return [m.group(1) for pattern in (INLINE_LINK, REFERENCE, HTML_LINK) for m in pattern.finditer(prose)]


def relative_links(path: Path, text: str) -> list[tuple[str, Path, str]]:
    """(link as written, the path it resolves to, its #fragment) for every link into the repository."""
    found = []
    for link in links(text):
        if link.startswith("#") or SCHEME.match(link) or link.startswith("//"):
            continue
        target, _, fragment = link.partition("#")
        target = target.split("?", 1)[0]
        found.append((link, (path.parent / target).resolve(), fragment))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-cased, without punctuation, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[`*_]|<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", text)):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def makefile_targets() -> set[str]:
    targets = set()
    for match in MAKEFILE_TARGET.finditer((ROOT / "Makefile").read_text(encoding="utf-8")):
        targets.update(match.group(1).split())
    return targets


def make_targets(text: str) -> list[str]:
    """The targets of every `make ...` command written as code: words after `make` up to a comment or an
    operator, leaving out VAR=value assignments and options."""
    named = []
    for code in code_of(text):
        for match in MAKE.finditer(code):
            rest = match.group(1).rstrip("\\")
            try:
                words = shlex.split(rest, comments=True)
            except ValueError:  # an unclosed quote: read it word by word
                words = rest.split("#", 1)[0].split()
            for word in words:
                if word in OPERATORS:
                    break
                if "=" in word or word.startswith("-"):
                    continue
                if not TARGET.match(word.rstrip(";")):
                    break
                named.append(word.rstrip(";"))
    return named


def display(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", sorted(all_sources()), ids=display)
def test_every_relative_link_points_at_something_that_exists(path):
    text = all_sources()[path]
    broken = [link for link, target, _ in relative_links(path, text) if not target.exists()]
    assert not broken, f"{display(path)} links to files or folders that do not exist: {broken}"


@pytest.mark.parametrize("path", sorted(all_sources()), ids=display)
def test_every_anchor_into_a_markdown_page_names_one_of_its_headings(path):
    text = all_sources()[path]
    wanted = [(link, target, fragment) for link, target, fragment in relative_links(path, text) if fragment]
    wanted += [(f"#{f}", path, f) for f in (link[1:] for link in links(text) if link.startswith("#")) if f]
    broken = [
        link
        for link, target, fragment in wanted
        if target.suffix == ".md" and target.is_file() and fragment not in anchors(target.read_text(encoding="utf-8"))
    ]
    assert not broken, f"{display(path)} links to headings that do not exist: {broken}"


@pytest.mark.parametrize("path", sorted(all_sources()), ids=display)
def test_every_make_target_named_is_a_target_of_the_makefile(path):
    unknown = sorted(set(make_targets(all_sources()[path])) - makefile_targets())
    assert not unknown, f"{display(path)} names make targets the Makefile lacks: {unknown} (`make help` lists them)"


def test_the_readme_is_at_most_8_kib():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move detail into docs/"


def test_the_checks_find_what_they_look_for(tmp_path):
    """The parsing itself: a broken link, a code span's link, a missing target, an anchor."""
    page = tmp_path / "page.md"
    page.write_text("# A heading\n", encoding="utf-8")
    text = (
        "[ok](page.md) [gone](missing.md#x) [web](https://example.com/a) [self](#a-heading) "
        '`[not a link](nowhere.md)` and `make test NOTEBOOKS="02 05"`\n\n```bash\nmake strip golden  # both\n'
        "make run-all PARAMS=\"seed=3 03.prompt='a red fox'\"\n# make the next one\n```\n"
        "To make the pictures, and `make no-such-target`.\n"
    )
    resolved = {link: target for link, target, _ in relative_links(tmp_path / "doc.md", text)}
    assert set(resolved) == {"page.md", "missing.md#x"}
    assert not resolved["missing.md#x"].exists() and resolved["page.md"].exists()
    assert sorted(make_targets(text)) == ["golden", "no-such-target", "run-all", "strip", "test"]
    assert anchors(page.read_text(encoding="utf-8")) == {"a-heading"}
    assert slug("Running in `Colab`: the setup cell") == "running-in-colab-the-setup-cell"
    assert {"test", "test-e2e", "help", "lab"} <= makefile_targets()
