"""One mechanism for the memory and the speed settings: a registry of named settings, each applied and undone."""

import pytest
import torch

from helpers import MEMORY_SETTINGS, SPEED_SETTINGS
from helpers.settings import Comparison, Setting, Settings

# Nothing to change: the baselines, and float32 on a pipeline that is already in float32.
NO_CHANGE = {"baseline", "float32"}


def snapshot(pipe) -> dict:
    """What a setting may change about a pipeline, in a form that compares with ==."""
    return {
        "components": {name: id(component) for name, component in pipe.components.items()},
        "dtype": pipe.dtype,
        "processors": {
            name: sorted(type(p).__name__ for p in getattr(pipe.components[name], "attn_processors", {}).values())
            for name in ("unet", "vae")
        },
        "vae slicing and tiling": (getattr(pipe.vae, "use_slicing", None), getattr(pipe.vae, "use_tiling", None)),
        "channels_last": pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last),
        "hooks": any(hasattr(pipe.components[name], "_hf_hook") for name in ("unet", "vae", "text_encoder")),
        "compiled in place": sum(getattr(m, "_compiled_call_impl", None) is not None for m in pipe.unet.modules()),
        "weights": {
            f"{name}.{key}": (value.dtype, value.sum().item())
            for name in ("unet", "vae", "text_encoder")
            for key, value in pipe.components[name].state_dict().items()
        },
    }


def test_both_registries_hold_settings_of_one_class():
    assert type(MEMORY_SETTINGS) is type(SPEED_SETTINGS) is Settings
    assert {type(s) for s in [*MEMORY_SETTINGS.values(), *SPEED_SETTINGS.values()]} == {Setting}
    # The memory settings are offered for speed too: the same objects, not copies.
    assert all(SPEED_SETTINGS[name] is MEMORY_SETTINGS[name] for name in MEMORY_SETTINGS if name != "baseline")
    assert all(
        name == setting.name for registry in (MEMORY_SETTINGS, SPEED_SETTINGS) for name, setting in registry.items()
    )


def test_apply_changes_the_pipeline_and_undo_restores_it(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    before = snapshot(pipe)
    settings = {**MEMORY_SETTINGS, **SPEED_SETTINGS}
    runnable = [name for name, setting in settings.items() if setting.why_unavailable(pipe) is None]
    assert {"attention slicing", "bfloat16", "channels_last", "torch.compile", "tiny autoencoder"} <= set(runnable)
    assert "regional compilation" in runnable
    for name in runnable:
        setting = settings[name]
        saved = setting.apply(pipe)
        changed = snapshot(pipe) != before
        setting.undo(pipe, saved)
        assert changed == (name not in NO_CHANGE), name
        assert snapshot(pipe) == before, f"{name} was not undone"


def test_why_unavailable_gives_the_reason_and_nothing_is_applied(tiny_pipe):
    reason = MEMORY_SETTINGS["model CPU offload"].why_unavailable(tiny_pipe)
    assert "accelerator" in reason and "CPU" in reason
    assert SPEED_SETTINGS.why_unavailable(tiny_pipe, ["channels_last", "model CPU offload"]) == reason
    assert SPEED_SETTINGS.why_unavailable(tiny_pipe, ["channels_last", "VAE tiling"]) is None
    applied = []
    settings = Settings(
        "test",
        [
            Setting("first", "first()", lambda pipe: applied.append("first"), lambda pipe, saved: None),
            Setting("refused", "refused()", applied.append, lambda pipe, saved: None, lambda pipe: "no such device"),
        ],
    )
    with pytest.raises(RuntimeError, match=r"^Cannot apply 'first \+ refused': no such device$"):
        with settings.applied(None, ["first", "refused"]):
            pass
    assert applied == []  # refused before the first setting is applied


def test_settings_are_undone_in_reverse_order_even_when_the_block_fails():
    log = []

    def logged(name: str) -> Setting:
        def apply(pipe):
            log.append(f"apply {name}")
            return name

        return Setting(name, f"{name}()", apply, lambda pipe, saved: log.append(f"undo {saved}"))

    settings = Settings("test", [logged("a"), logged("b")])
    with pytest.raises(ValueError, match="boom"), settings.applied(None, ["a", "b"]):
        raise ValueError("boom")
    assert log == ["apply a", "apply b", "undo b", "undo a"]


def test_names_are_checked_with_the_registry_in_the_message():
    with pytest.raises(ValueError, match=r"^Unknown speed setting name='xformers'; use one of \['baseline', "):
        SPEED_SETTINGS.check(["channels_last", "xformers"])
    with pytest.raises(ValueError, match=r"give at least one setting name"):
        MEMORY_SETTINGS.check([])
    one = Setting.baseline("# nothing")
    with pytest.raises(ValueError, match=r"test settings name 'baseline' twice"):
        Settings("test", [one, one])


def test_compare_checks_every_name_first_then_measures_or_skips_each(tiny_pipe):
    calls = []
    with pytest.raises(ValueError, match=r"Unknown memory setting name='fp8'"):
        MEMORY_SETTINGS.compare(tiny_pipe, ["baseline", "fp8"], calls.append, warm_up=lambda: calls.append("warm"))
    assert calls == []  # a typo costs nothing
    result = SPEED_SETTINGS.compare(
        tiny_pipe,
        ["baseline", ["channels_last", "fused QKV projections"], "model CPU offload"],
        lambda label, names: (label, names),
        warm_up=lambda: calls.append("warm"),
    )
    assert isinstance(result, Comparison) and calls == ["warm"]
    assert result.results == [
        ("baseline", ["baseline"]),
        ("channels_last + fused QKV projections", ["channels_last", "fused QKV projections"]),
    ]
    assert list(result.skipped) == ["model CPU offload"]
    results, skipped = result  # unpacks as (results, skipped)
    assert results is result.results
    assert skipped == {"model CPU offload": MEMORY_SETTINGS["model CPU offload"].why_unavailable(tiny_pipe)}


def test_one_table_helper_for_both_registries():
    assert MEMORY_SETTINGS.table().splitlines()[:3] == [
        "| setting | code |",
        "| --- | --- |",
        "| baseline | `# nothing: every model on the device, all at once` |",
    ]
    assert SPEED_SETTINGS.table(["VAE slicing"]).splitlines()[2] == MEMORY_SETTINGS.table().splitlines()[4]
