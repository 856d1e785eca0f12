"""What a reader of a saved notebook sees: the check itself, and a real kernel running the helpers."""

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from helpers.standins.tiny import tiny_model_path
from tools.output_check import output_problems


def notebook_with(*outputs):
    cell = new_code_cell("x")
    cell.outputs = list(outputs)
    return new_notebook(cells=[cell])


def shown(text, **more):
    return new_output("display_data", {"text/plain": text, **more})


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (shown("<Figure size 550x260 with 1 Axes>"), "figure or picture as text"),
        (shown("<PIL.Image.Image image mode=RGB size=64x64>"), "figure or picture as text"),
        (shown("<diffusers.X object at 0x7f3a2b1c>"), "memory address"),
        (
            new_output("stream", name="stderr", text="/x/lib/python3.11/site-packages/torchsde/_brownian.py:185: W"),
            "installed packages",
        ),
        (shown("Loading weights:   0%|          | 0/84 [00:00<?, ?it/s]"), "progress bar saved at 0/84"),
        (new_output("stream", name="stderr", text="  0%|   | 0/10 [00:00<?, ?it/s]\r 10%|#  | 1/10\n"), None),
        (new_output("stream", name="stderr", text=" 50%|#  | 5/10\r  0%|   | 0/10 [00:00<?, ?it/s]"), "0/10"),
        (shown("100%|██████████| 10/10 [00:01<00:00,  8.50it/s]"), None),
        (shown("<Figure size 550x260 with 1 Axes>", **{"image/png": "iVBOR"}), None),
        (new_output("stream", name="stdout", text="load: 1.2 s, peak 485.2 MiB (process RSS)\n"), None),
    ],
)
def test_each_thing_a_reader_should_not_see_is_found(output, problem):
    problems = output_problems(notebook_with(output))
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0] and problems[0].startswith("cell 0: ")


LESSON_LIKE = [
    "from helpers import bar_chart, compare_schedulers, get_inputs, load_pipeline\n"
    "pipe = load_pipeline(profile='tiny')",
    "image = pipe(**get_inputs(num_inference_steps=3)).images[0]\nimage",
    "runs = compare_schedulers(pipe, ['DPMSolverSDEScheduler'], num_inference_steps=3)",
    "bar_chart(['PNDM', 'DPM'], {'seconds': [2.0, 0.8]}, title='Time per image')",
]
# The same steps as a learner would write them without the helpers' display and progress-bar fixes.
# (It must not import helpers at all: importing it installs the progress bars.)
PLAIN = [
    "from diffusers import StableDiffusionPipeline\n"
    f"pipe = StableDiffusionPipeline.from_pretrained({str(tiny_model_path('base'))!r})",
    "from matplotlib.figure import Figure\nfig = Figure()\nfig.subplots().bar([0, 1], [2.0, 0.8])\nfig",
    "pipe('x', num_inference_steps=3, height=64, width=64).images[0]",
]


def execute(tmp_path, cells):
    source = tmp_path / "in.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(code) for code in cells]), source)
    papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    return nbformat.read(tmp_path / "out.ipynb", as_version=4)


@pytest.mark.e2e
def test_a_kernel_running_the_helpers_saves_pictures_finished_bars_and_no_paths(tmp_path):
    executed = execute(tmp_path, LESSON_LIKE)
    assert output_problems(executed) == []
    picture, chart = executed.cells[1].outputs[-1], executed.cells[3].outputs[-1]
    assert "image/png" in picture.data and "image/png" in chart.data
    bars = [
        o.data["text/plain"]
        for c in executed.cells
        for o in c.outputs
        if "it/s]" in o.get("data", {}).get("text/plain", "")
    ]
    assert bars and all("100%" in bar for bar in bars), bars


@pytest.mark.e2e
def test_without_the_helpers_a_kernel_saves_figures_as_text_and_bars_at_zero(tmp_path):
    problems = " | ".join(output_problems(execute(tmp_path, PLAIN)))
    assert "figure or picture as text, not as a picture: <Figure size" in problems
    assert "progress bar saved at 0/" in problems
