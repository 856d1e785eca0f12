"""Same prompt, same seed, several settings, on the tiny model: images, timings, tables."""

import pytest
from PIL import Image

from helpers import (
    NOT_FOR_SD15,
    compare_schedulers,
    get_inputs,
    image_difference,
    nearest_image,
    runs_table,
    time_batch_sizes,
)
from helpers.compare import quiet

FAST = {"num_inference_steps": 2, "height": 32, "width": 32}


def test_each_scheduler_gets_the_same_seed_and_the_pipeline_keeps_its_own(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    original = pipe.scheduler
    runs = compare_schedulers(pipe, ["EulerDiscreteScheduler", "DPMSolverMultistepScheduler"], seed=3, **FAST)
    assert pipe.scheduler is original
    assert [run.label for run in runs] == ["EulerDiscreteScheduler", "DPMSolverMultistepScheduler"]
    assert [img.size for run in runs for img in run.images] == [(32, 32), (32, 32)]
    assert all(run.seconds > 0 and run.seconds_per_image == run.seconds for run in runs)
    assert runs[0].inputs["generator"][0].initial_seed() == 3
    direct = pipe(**get_inputs(seed=3, **FAST)).images[0]  # the tiny model's own Euler, made outside the comparison
    assert image_difference(runs[0].images[0], direct) == 0
    assert image_difference(runs[0].images[0], runs[1].images[0]) > 1


def test_by_default_every_usable_scheduler_but_edm_euler(tiny_pipe, monkeypatch):
    seen = []
    monkeypatch.setattr("helpers.compare.set_scheduler", lambda pipe, name: seen.append(name))
    monkeypatch.setattr("helpers.compare.timed_run", lambda pipe, label, inputs: label)
    assert compare_schedulers(tiny_pipe, warmup=False, **FAST) == seen
    assert "PNDMScheduler" in seen and "DPMSolverMultistepScheduler" in seen
    assert "EDMEulerScheduler" in NOT_FOR_SD15 and "EDMEulerScheduler" not in seen
    assert seen == sorted(seen)


def test_a_failing_scheduler_still_restores_the_original(fresh_tiny_pipe):
    original = fresh_tiny_pipe.scheduler
    with pytest.raises(ValueError, match=r"Unknown scheduler name='Nope'"):
        compare_schedulers(fresh_tiny_pipe, ["EulerDiscreteScheduler", "Nope"], warmup=False, **FAST)
    assert fresh_tiny_pipe.scheduler is original


@pytest.mark.parametrize("names", ["PNDMScheduler", []])
def test_names_must_be_a_list(tiny_pipe, names):
    with pytest.raises(ValueError, match=r"names must be a non-empty list of scheduler names, got names="):
        compare_schedulers(tiny_pipe, names)


def test_batch_sizes_give_one_run_each_and_picture_i_keeps_seed_i(tiny_pipe):
    runs = time_batch_sizes(tiny_pipe, [1, 3], seed=5, warmup=False, **FAST)
    assert [run.label for run in runs] == ["batch 1", "batch 3"]
    assert [len(run.images) for run in runs] == [1, 3]
    assert runs[1].seconds_per_image == pytest.approx(runs[1].seconds / 3)
    assert image_difference(runs[0].images[0], runs[1].images[0]) < 1  # both seed 5
    assert nearest_image(runs[0].images[0], runs[1].images) == 0


@pytest.mark.parametrize(
    ("sizes", "message"),
    [([], r"batch_sizes must be a non-empty list of integers, got batch_sizes=\[\]"), (4, r"got batch_sizes=4")],
)
def test_bad_batch_sizes_are_named(tiny_pipe, sizes, message):
    with pytest.raises(ValueError, match=message):
        time_batch_sizes(tiny_pipe, sizes)


def test_a_zero_batch_is_refused_by_get_inputs(tiny_pipe):
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got batch_size=0"):
        time_batch_sizes(tiny_pipe, [0], warmup=False, **FAST)


def test_runs_table_has_one_row_per_run(tiny_pipe):
    runs = time_batch_sizes(tiny_pipe, [1, 2], warmup=False, **FAST)
    lines = runs_table(runs).splitlines()
    assert lines[0] == "| setting | images | seconds | s / image | peak MiB | memory measured |"
    assert len(lines) == 4
    assert lines[3].startswith("| batch 2 | 2 | ") and lines[3].endswith("| process RSS |")


def test_quiet_hides_progress_bars_and_restores_the_setting(fresh_tiny_pipe):
    fresh_tiny_pipe.set_progress_bar_config(leave=False)
    with quiet(fresh_tiny_pipe):
        assert fresh_tiny_pipe._progress_bar_config == {"leave": False, "disable": True}
    assert fresh_tiny_pipe._progress_bar_config == {"leave": False}


def test_image_difference_and_nearest_image():
    black, white, grey = (Image.new("RGB", (4, 4), c) for c in ("black", "white", (128, 128, 128)))
    assert image_difference(black, black) == 0
    assert image_difference(black, white) == 255
    assert nearest_image(Image.new("RGB", (4, 4), (120, 120, 120)), [black, white, grey]) == 2
    with pytest.raises(ValueError, match=r"same size to compare, got \(4, 4\) and \(2, 2\)"):
        image_difference(black, Image.new("RGB", (2, 2)))
    with pytest.raises(ValueError, match="candidates is empty"):
        nearest_image(black, [])
