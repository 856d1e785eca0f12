"""Repeated timing on the tiny model: warm-up calls apart, medians, spread, the loop's it/s."""

import pytest

from helpers import get_inputs, image_difference
from helpers.timing import StepClock, Timing, time_pipeline

FAST = {"height": 32, "width": 32}


def test_warm_up_then_reps_with_the_loop_clocked(tiny_pipe):
    calls = []
    timing = time_pipeline(
        tiny_pipe, "two", reps=3, warmup=2, batch_size=2, num_inference_steps=3, on_call=lambda: calls.append(1), **FAST
    )
    assert (timing.label, timing.batch_size, len(timing.seconds), len(timing.warmup_seconds)) == ("two", 2, 3, 2)
    assert len(calls) == 5
    assert timing.unet_calls == len(tiny_pipe.scheduler.timesteps) == 3 and timing.guided  # Euler; PNDM: see below
    assert all(s > 0 for s in timing.seconds) and timing.median_seconds > 0
    assert timing.seconds_per_image == pytest.approx(timing.median_seconds / 2)
    assert all(v > 0 for v in timing.iterations_per_second)
    assert min(timing.seconds) <= timing.median_seconds <= max(timing.seconds) and timing.spread_percent >= 0
    assert timing.first_call_extra_seconds is not None and timing.first_call_extra_seconds >= 0
    assert timing.peak_mib > 0 and timing.memory_kind == "process RSS"
    # The pictures are the ones a plain call makes: the clock changes nothing.
    plain = tiny_pipe(**get_inputs(batch_size=2, num_inference_steps=3, **FAST)).images
    assert [image_difference(a, b) for a, b in zip(timing.images, plain, strict=True)] == [0, 0]
    row = timing.as_dict()
    assert row["median_seconds"] > 0 and row["unet_calls"] == 3 and len(row["seconds"]) == 3


def test_pndm_runs_one_step_more_than_asked(fresh_tiny_pipe):
    # SD1.5's PNDM (skip_prk_steps) repeats one timestep: 4 steps asked, 5 UNet calls. The clock counts calls.
    from diffusers import PNDMScheduler

    fresh_tiny_pipe.scheduler = PNDMScheduler.from_config(fresh_tiny_pipe.scheduler.config)
    assert time_pipeline(fresh_tiny_pipe, reps=1, warmup=0, num_inference_steps=4, **FAST).unet_calls == 5


def test_a_single_step_has_no_loop_speed():
    clock = StepClock("cpu")
    assert clock.iterations_per_second != clock.iterations_per_second  # NaN: nothing clocked
    timing = Timing("x", 1, [1.0], [float("nan")], 1, True, [0.5], None, "process RSS")
    assert timing.first_call_extra_seconds is None and timing.peak_mib != timing.peak_mib


@pytest.mark.parametrize(("kwargs", "match"), [({"reps": 0}, r"reps=0"), ({"warmup": -1}, r"warmup=-1")])
def test_bad_counts_name_the_value(tiny_pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_pipeline(tiny_pipe, **kwargs)
