"""What is inside the tiny pipeline, and what half precision changes, measured."""

import pytest
import torch

from helpers import components_table, half_precision_check, pipeline_components


def test_components_with_their_classes_sizes_dtype_and_device(tiny_pipe):
    parts = {c.name: c for c in pipeline_components(tiny_pipe)}
    assert {name: c.class_name for name, c in parts.items()} == {
        "vae": "AutoencoderKL",
        "text_encoder": "CLIPTextModel",
        "tokenizer": "CLIPTokenizer",
        "unet": "UNet2DConditionModel",
        "scheduler": "EulerDiscreteScheduler",
    }  # no safety checker or feature extractor in the tiny model: absent, not listed as None
    unet = parts["unet"]
    assert unet.parameters == sum(p.numel() for p in tiny_pipe.unet.parameters())
    assert (unet.dtype, unet.device) == ("float32", "cpu")
    assert unet.bytes >= 4 * unet.parameters
    assert (parts["tokenizer"].parameters, parts["tokenizer"].dtype) == (0, None)


def test_components_table_ends_with_the_total(tiny_pipe):
    parts = pipeline_components(tiny_pipe)
    lines = components_table(parts).splitlines()
    assert lines[0] == "| component | class | parameters | dtype | device | MiB |"
    assert len(lines) == 2 + len(parts) + 1
    assert lines[-1].startswith(f"| **total** | | {sum(c.parameters for c in parts):,} |")


def test_half_precision_halves_the_memory_and_barely_changes_the_output(tiny_pipe):
    ids = tiny_pipe.tokenizer("portrait photo of a old warrior chief", return_tensors="pt").input_ids
    check = half_precision_check(tiny_pipe.text_encoder, ids)
    assert check.memory_ratio == pytest.approx(0.5, abs=0.01)  # a small int64 buffer is not halved
    assert 0 < check.relative_difference < 0.01
    assert tiny_pipe.text_encoder.dtype == torch.float32  # the pipeline's own model is left alone


def test_half_precision_check_explains_bad_input(tiny_pipe):
    with pytest.raises(TypeError, match=r"module must be a torch.nn.Module such as pipe.text_encoder, got module=str"):
        half_precision_check("text_encoder", torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"give the module's inputs too"):
        half_precision_check(tiny_pipe.text_encoder)
