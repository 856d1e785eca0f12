import numpy as np
import pytest
from diffusers.utils import dummy_torch_and_scipy_objects

from helpers import get_inputs, list_schedulers, set_scheduler
from helpers.schedulers import SchedulerInfo, usable_schedulers


def test_compatibles_are_sorted_and_all_usable_with_the_pinned_extras(tiny_pipe):
    infos = list_schedulers(tiny_pipe)
    names = [info.name for info in infos]
    assert names == sorted(names)
    assert {"PNDMScheduler", "DPMSolverMultistepScheduler", "LMSDiscreteScheduler", "DPMSolverSDEScheduler"} <= set(
        names
    )
    assert all(info.usable for info in infos), [i for i in infos if not i.usable]  # scipy and torchsde are pinned
    assert usable_schedulers(tiny_pipe) == names


def test_a_placeholder_is_marked_unusable_with_what_it_needs(monkeypatch):
    """Fake a missing scipy: diffusers then lists a placeholder object instead of the class."""
    placeholder = dummy_torch_and_scipy_objects.LMSDiscreteScheduler

    class FakeScheduler:
        compatibles = [placeholder]

    class FakePipe:
        scheduler = FakeScheduler()

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "scipy" else object())
    assert list_schedulers(FakePipe()) == [SchedulerInfo("LMSDiscreteScheduler", False, ("scipy",))]
    with pytest.raises(ImportError, match="LMSDiscreteScheduler needs scipy: pip install scipy"):
        set_scheduler(FakePipe(), "LMSDiscreteScheduler")


def test_switch_by_name_keeps_the_config(fresh_tiny_pipe):
    before = dict(fresh_tiny_pipe.scheduler.config)
    new = set_scheduler(fresh_tiny_pipe, "DPMSolverMultistepScheduler")
    assert fresh_tiny_pipe.scheduler is new
    assert type(new).__name__ == "DPMSolverMultistepScheduler"
    for key in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "steps_offset"):
        assert new.config[key] == before[key]
    assert (
        set_scheduler(fresh_tiny_pipe, "EulerDiscreteScheduler", timestep_spacing="trailing").config["timestep_spacing"]
        == "trailing"
    )


def test_unknown_name_lists_the_valid_ones(tiny_pipe):
    with pytest.raises(
        ValueError, match=r"Unknown scheduler name='DPM\+\+'.*'DDIMScheduler'.*'UniPCMultistepScheduler'"
    ):
        set_scheduler(tiny_pipe, "DPM++")


def test_every_usable_scheduler_generates_and_changes_the_image(fresh_tiny_pipe):
    pixels = {}
    for name in usable_schedulers(fresh_tiny_pipe):
        set_scheduler(fresh_tiny_pipe, name)
        image = fresh_tiny_pipe(**get_inputs(num_inference_steps=3), height=32, width=32).images[0]
        assert image.size == (32, 32)
        pixels[name] = np.asarray(image)
    assert not np.array_equal(pixels["PNDMScheduler"], pixels["EulerAncestralDiscreteScheduler"])
