import numpy as np
import pytest
from diffusers.utils import dummy_torch_and_scipy_objects

from helpers import get_inputs, list_schedulers, set_scheduler
from helpers.schedulers import SchedulerInfo, noise_levels, schedule_chart, usable_schedulers


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


def test_unset_settings_are_not_passed_on(fresh_tiny_pipe):
    """A config saved with ``sigma_min: null`` (EulerDiscreteScheduler's) must not override EDM's own defaults."""
    from diffusers import EulerDiscreteScheduler

    pipe = fresh_tiny_pipe
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    assert pipe.scheduler.config.sigma_min is None
    edm = set_scheduler(pipe, "EDMEulerScheduler")
    assert (edm.config.sigma_min, edm.config.sigma_max) == (0.002, 80.0)
    assert set_scheduler(pipe, "DPMSolverMultistepScheduler").config.beta_end == 0.012  # and back


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


def test_noise_levels_follow_the_schedule(tiny_pipe):
    from diffusers import DPMSolverMultistepScheduler, PNDMScheduler

    trailing = DPMSolverMultistepScheduler.from_config(tiny_pipe.scheduler.config, timestep_spacing="trailing")
    trailing.set_timesteps(10)
    levels = noise_levels(trailing)
    assert len(levels) == 10 and levels == sorted(levels, reverse=True)
    assert levels[0] == pytest.approx(14.615, abs=1e-3)  # timestep 999 of SD1.5's training schedule
    # PNDM keeps no sigmas: they come from alphas_cumprod, one per UNet call (its first timestep runs twice).
    pndm = PNDMScheduler.from_config(tiny_pipe.scheduler.config)
    pndm.set_timesteps(10)
    alpha = float(pndm.alphas_cumprod[901])
    assert noise_levels(pndm)[:3] == pytest.approx([((1 - alpha) / alpha) ** 0.5, *noise_levels(pndm)[1:3]])
    assert len(noise_levels(pndm)) == 11 and noise_levels(pndm)[1] == noise_levels(pndm)[2]
    with pytest.raises(ValueError, match=r"PNDMScheduler has no schedule yet: call scheduler.set_timesteps\(n\)"):
        noise_levels(PNDMScheduler.from_config(tiny_pipe.scheduler.config))


def test_schedule_chart_draws_one_line_per_schedule_and_names_a_bad_one(tiny_pipe):
    from diffusers import DPMSolverMultistepScheduler

    schedules = {}
    for label, options in {"trailing": {"timestep_spacing": "trailing"}, "Karras": {"use_karras_sigmas": True}}.items():
        schedules[label] = DPMSolverMultistepScheduler.from_config(tiny_pipe.scheduler.config, **options)
        schedules[label].set_timesteps(8)
    chart = schedule_chart(schedules, title="two")
    timestep_axes, sigma_axes = chart.axes
    assert [line.get_label() for line in sigma_axes.lines] == ["trailing", "Karras"]
    assert list(timestep_axes.lines[0].get_ydata()) == schedules["trailing"].timesteps.tolist()
    assert list(sigma_axes.lines[1].get_ydata()) == pytest.approx(noise_levels(schedules["Karras"]))
    with pytest.raises(ValueError, match="schedules is empty"):
        schedule_chart({})
    unset = DPMSolverMultistepScheduler.from_config(tiny_pipe.scheduler.config)
    with pytest.raises(ValueError, match=r"schedule 'unset': DPMSolverMultistepScheduler has no schedule yet"):
        schedule_chart({"unset": unset})


def test_what_lesson_03_says_about_diffusers_schedulers_holds(tiny_pipe):
    """The lesson's claims about diffusers itself: a new diffusers that changes one fails here, not in prose."""
    import logging

    import diffusers
    from diffusers import DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler, EDMEulerScheduler

    config = tiny_pipe.scheduler.config
    # EDMEulerScheduler's compatibles list only itself: no way back to the pipeline's first scheduler.
    assert EDMEulerScheduler().compatibles == [EDMEulerScheduler]
    # Four compatible schedulers are second-order: 2n - 1 UNet calls for n steps.
    second_order = {name for name in usable_schedulers(tiny_pipe) if getattr(diffusers, name).order == 2}
    assert second_order == {
        "DPMSolverSDEScheduler",
        "HeunDiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "KDPM2DiscreteScheduler",
    }
    for name in second_order:
        scheduler = getattr(diffusers, name).from_config(config)
        scheduler.set_timesteps(10)
        assert len(scheduler.timesteps) == 19, name
    # from_config carries SD1.5's spacing over; Karras sigmas start at the pure-noise end whatever the spacing.
    dpm = DPMSolverMultistepScheduler.from_config(config)
    dpm.set_timesteps(10)
    assert dpm.config.timestep_spacing == "leading" and dpm.timesteps.tolist()[0] == 901
    karras = DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True)
    karras.set_timesteps(10)
    assert karras.timesteps.tolist()[0] == 999 and karras.timesteps.tolist()[-1] == 0
    # DPMSolverSinglestepScheduler changes lower_order_final at an even step count too: its own defaults do it.
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("diffusers.schedulers.scheduling_dpmsolver_singlestep")
    logger.addHandler(handler)
    try:
        single = DPMSolverSinglestepScheduler.from_config(config)
        assert (single.config.lower_order_final, single.config.final_sigmas_type) == (False, "zero")
        single.set_timesteps(20)
        assert single.config.lower_order_final is True
        assert ["lower_order_final" in record.getMessage() for record in records] == [True]
        quiet = DPMSolverSinglestepScheduler.from_config(config, lower_order_final=True)
        quiet.set_timesteps(20)
        assert len(records) == 1
    finally:
        logger.removeHandler(handler)
