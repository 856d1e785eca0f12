"""Notebook hygiene: stripped for Colab and git, the same setup cell everywhere, badges that point at themselves,
papermill parameters that are declared, commented and used, nbval checks marked by cell tags rather than comments
in the learner's code, pictures saved through one binding per notebook, and goldens whose code is the notebooks'
code."""

import ast
import re
import tomllib
from pathlib import Path

import nbformat
import papermill
import pytest

from tools import ROOT, goldens

NOTEBOOK_DIR = ROOT / "notebooks"
GOLDEN_DIR = ROOT / "tests" / "goldens"
STEMS = [
    "00_playground",
    "01_load_model",
    "02_text_to_image",
    "02b_inside_the_pipeline",
    "03_schedulers",
    "04_batching_and_grids",
    "05_memory",
    "06_finetuned_openjourney",
    "07_making_it_fast",
    "08_train_your_own",
]
# The parameters a notebook may declare (papermill and `make run-all` pass them by these names).
KNOWN_PARAMETERS = {
    "profile",
    "model_id",
    "prompt",
    "seed",
    "num_inference_steps",
    "height",
    "width",
    "batch_size",
    "compile_unet",
    "output_dir",
    "train_steps",
    "pictures",
    "finetune_steps",
}
# nbval reads these cell tags as it reads the comment markers (# NBVAL_CHECK_OUTPUT ...); the tags keep the
# learner's code free of test plumbing. `parameters` is papermill's.
NBVAL_TAGS = {"nbval-check-output", "nbval-ignore-output", "nbval-skip"}
KNOWN_TAGS = NBVAL_TAGS | {"parameters"}
FIX_STRIP = "run `make strip` (nbstripout) and commit the result"
FIX_GOLDEN = "run `make golden` and commit tests/goldens/"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def repository_url() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


@pytest.fixture(scope="module", params=STEMS)
def notebook(request):
    return request.param, read(NOTEBOOK_DIR / f"{request.param}.ipynb")


def test_the_notebooks_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == STEMS
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.ipynb")) == STEMS, FIX_GOLDEN


def test_committed_stripped(notebook):
    stem, nb = notebook
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.outputs:
            problems.append(f"cell {index} has outputs")
        if cell.cell_type == "code" and cell.execution_count is not None:
            problems.append(f"cell {index} has execution_count {cell.execution_count}")
        extra = set(cell.metadata) - {"tags"}
        if extra:
            problems.append(f"cell {index} has metadata {sorted(extra)}")
        if cell.get("id") != str(index):
            problems.append(f"cell {index} has id {cell.get('id')!r}, not the {str(index)!r} nbstripout gives")
    extra = set(nb.metadata) - {"accelerator", "colab", "kernelspec", "language_info"}
    if extra or "version" in nb.metadata.get("language_info", {}):
        problems.append(f"notebook metadata has {sorted(extra) or 'language_info.version'}")
    assert not problems, f"{stem}.ipynb is not clean: {'; '.join(problems)}; {FIX_STRIP}"


def test_nbval_reads_our_tags():
    from nbval.plugin import metadata_tags

    assert NBVAL_TAGS <= set(metadata_tags), f"nbval no longer knows {sorted(NBVAL_TAGS - set(metadata_tags))}"
    assert goldens.CHECK == "nbval-check-output" and metadata_tags[goldens.CHECK] == "check"


def test_tags_are_known_and_checks_are_tags_not_comments(notebook):
    stem, nb = notebook
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{stem}: exactly one code cell tagged 'parameters'"
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        assert set(tags) <= KNOWN_TAGS, f"{stem}: cell {index} has tags {sorted(set(tags) - KNOWN_TAGS)}"
        assert len(tags) == len(set(tags)), f"{stem}: cell {index} repeats a tag: {tags}"
        if cell.cell_type == "code":
            markers = [line.strip() for line in cell.source.splitlines() if "NBVAL" in line]
            assert not markers, (
                f"{stem}: cell {index} marks an nbval check in the learner's code ({markers[0]!r}): "
                "tag the cell instead (nbval-check-output, nbval-ignore-output, nbval-skip)"
            )
    assert any(goldens.is_checked(cell) for cell in nb.cells), f"{stem}: no cell tagged nbval-check-output"


def test_a_check_is_a_tag():
    assert goldens.is_checked(nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]}))
    assert not goldens.is_checked(nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"))
    assert not goldens.is_checked(nbformat.v4.new_markdown_cell("x", metadata={"tags": ["nbval-check-output"]}))


def test_the_setup_cell_is_the_same_everywhere_and_runs_the_repositorys_colab_setup():
    """Every notebook, those added later included, opens with the same short setup cell: in Colab it clones the
    repository and runs helpers/colab_setup.py, where the logic lives (and is tested); elsewhere it does nothing."""
    setups = {path.stem: code_cells(read(path))[0].source for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))}
    first = setups[STEMS[0]]
    assert all(source == first for source in setups.values()), [s for s, src in setups.items() if src != first]
    assert 'if "google.colab" in sys.modules:' in first
    assert f'url = "{repository_url()}"' in first
    assert '"git", "clone"' in first
    assert 'runpy.run_path(f"{repo}/helpers/colab_setup.py", run_name="__main__")' in first
    assert (ROOT / "helpers" / "colab_setup.py").is_file()
    assert "pip" not in first and "helpers import" not in first, "installing belongs in helpers/colab_setup.py"
    assert len(first.splitlines()) <= 14, "keep the setup cell short: its logic goes in helpers/colab_setup.py"
    # Outside Colab it does nothing: everything it runs sits under the `if`.
    body = ast.parse(first).body
    assert [type(node).__name__ for node in body] == ["Import", "If"]


def test_the_badge_opens_this_notebook_in_colab(notebook):
    stem, nb = notebook
    owner_repo = repository_url().removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{stem}.ipynb"
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})" in title.source
    others = re.findall(r"colab\.research\.google\.com/github/\S+?\.ipynb", "".join(c.source for c in nb.cells))
    assert others == [url.removeprefix("https://")]
    assert f"]({url})" in (ROOT / "README.md").read_text(), f"README's table lacks the badge of {stem}"


def test_parameters_are_known_commented_and_used(notebook):
    stem, nb = notebook
    params = papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{stem}.ipynb"))
    assert params["profile"]["default"] == '"auto"' and params["output_dir"]["default"] == "None"
    assert set(params) <= KNOWN_PARAMETERS, f"{stem}: unknown parameters {sorted(set(params) - KNOWN_PARAMETERS)}"
    tagged = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assignments = [line for line in tagged.source.splitlines() if line.strip()]
    assert len(assignments) == len(params), f"{stem}: the parameters cell holds only plain assignments"
    after = "\n".join(c.source for c in code_cells(nb)[code_cells(nb).index(tagged) + 1 :])
    for name, info in params.items():
        assert info["help"], f"{stem}: parameter {name} has no trailing comment saying what it does"
        assert re.search(rf"\b{name}\b", after), f"{stem}: parameter {name} is declared but never used"


def test_pictures_are_saved_through_one_binding_under_the_notebooks_name(notebook):
    """The folder, the pipeline and the notebook's name are bound once (``save = image_saver(output_dir, ...)``);
    each picture is then saved with ``save(images, inputs)``, not with the whole ``save_images`` call again."""
    stem, nb = notebook
    source = "\n".join(cell.source for cell in code_cells(nb))
    # The playground's Save button calls save_images; 01 shows the whole call once.
    assert re.search(r"\b(image_saver|save_images|Playground)\(", source), f"{stem} saves no picture"
    names = set(re.findall(r"notebook=(\w+|\"[^\"]*\")", source))
    assert names <= {f'"{stem}"'}, f"{stem}: notebook=... must name this notebook, as a string: {names}"
    bindings = re.findall(r"^save = image_saver\(output_dir\b", source, re.MULTILINE)
    if "image_saver(" in source or re.search(r"\bsave\(", source):
        assert len(bindings) == 1, f"{stem}: bind `save = image_saver(output_dir, ...)` once, not {len(bindings)} times"
    assert source.count("save_images(") <= 1, f"{stem}: bind the folder once: save = image_saver(output_dir, pipe, ...)"


def test_logic_lives_in_helpers_not_in_notebooks(notebook):
    stem, nb = notebook
    for cell in code_cells(nb):
        defined = [n for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        assert not defined, f"{stem}: define {[n.name for n in defined]} in helpers/ and import it"


def test_goldens_run_the_notebooks_code(notebook):
    stem, nb = notebook
    golden = read(GOLDEN_DIR / f"{stem}.ipynb")
    injected = [c for c in golden.cells if "injected-parameters" in c.metadata.get("tags", [])]
    golden_code = [(c.source, c.metadata.get("tags", [])) for c in code_cells(golden) if c not in injected]
    notebook_code = [(c.source, c.metadata.get("tags", [])) for c in code_cells(nb)]
    assert golden_code == notebook_code, f"{stem}: golden differs from notebook (code or tags); {FIX_GOLDEN}"


def test_a_golden_runs_with_the_parameters_the_goldens_tool_gives_it(notebook):
    stem, _ = notebook
    golden = read(GOLDEN_DIR / f"{stem}.ipynb")
    injected = [c for c in golden.cells if "injected-parameters" in c.metadata.get("tags", [])]
    wanted = goldens.PARAMETERS.get(stem)
    if wanted is None:
        assert not injected, f"{stem}: golden has injected parameters the goldens tool does not give; {FIX_GOLDEN}"
        return
    assert set(wanted) <= set(papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{stem}.ipynb")))
    (cell,) = injected
    assert cell.id == "injected-parameters" and cell.execution_count is not None
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}
    assert values == wanted, f"{stem}: golden ran with {values}, the goldens tool gives {wanted}; {FIX_GOLDEN}"


def test_goldens_check_only_stable_facts(notebook):
    stem, _ = notebook
    golden = read(GOLDEN_DIR / f"{stem}.ipynb")
    for index, cell in enumerate(code_cells(golden)):
        assert cell.execution_count is not None, f"{stem}: golden code cell {index} was not run; {FIX_GOLDEN}"
        if goldens.is_checked(cell):
            assert not goldens.problems_in_checked_output(cell), f"{stem}: checked cell {index}; {FIX_GOLDEN}"
        else:
            assert not cell.outputs, f"{stem}: golden keeps outputs of unchecked cell {index}; {FIX_GOLDEN}"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("one picture: 0.39 s\n", "a timing"),
        ("peak 512 MiB\n", "a memory size"),
        ("saved in /tmp/out/x.png\n", "a path"),
        ("device: cuda\n", "a device"),
        (" No GPU found: running the TINY TEST MODEL\n", "the tiny-model banner"),
        ("<Foo object at 0x7f00aa>\n", "an object address"),
    ],
)
def test_unstable_checked_outputs_are_refused(text, what):
    cell = nbformat.v4.new_code_cell("print(x)", metadata={"tags": ["nbval-check-output"]})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    (problem,) = goldens.problems_in_checked_output(cell)
    assert problem.startswith(f"prints {what} ")


def test_checked_cells_must_print_and_only_print():
    cell = nbformat.v4.new_code_cell("image", metadata={"tags": ["nbval-check-output"]})
    assert goldens.problems_in_checked_output(cell) == ["prints nothing: a checked cell must print the facts it checks"]
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "<PIL.Image>"})]
    assert "only print()" in goldens.problems_in_checked_output(cell)[0]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2 x 4 grid of 8 pictures\n")]
    assert goldens.problems_in_checked_output(cell) == []
