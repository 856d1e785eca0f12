"""FLOPs counted by PyTorch on the meta device: SD1.5's known figures, nothing allocated, the peak table."""

import resource

import pytest
import torch

from helpers.flops import (
    meta_copy,
    peak_tflops,
    pipeline_flops,
    tflops_per_second,
    unet_step_flops,
    vae_decode_flops,
)
from helpers.standins.replica import replica_unet, replica_vae
from helpers.standins.tiny_autoencoder import random_tiny_autoencoder


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_one_guided_step_of_the_replica_unet_is_1_607_tflop_at_512():
    before = _rss_mib()
    flops = unet_step_flops(replica_unet(), batch_size=1, height=512, width=512)
    assert flops / 1e12 == pytest.approx(1.607, abs=0.001)
    # Guidance doubles the batch; a step is linear in the batch.
    assert unet_step_flops(replica_unet(), 1, 512, 512, guided=False) * 2 == flops
    assert unet_step_flops(replica_unet(), 8, 512, 512) == 8 * flops
    assert _rss_mib() - before < 300  # 3.4 GB of fp32 weights were never allocated


def test_a_vae_decode_of_the_replica_is_2_515_tflop_at_512():
    assert vae_decode_flops(replica_vae(), 1, 512, 512) / 1e12 == pytest.approx(2.515, abs=0.001)


def test_the_count_ignores_device_dtype_and_compilation(tiny_pipe):
    counts = pipeline_flops(tiny_pipe, 2, 64, 64)
    assert counts["unet_step"] > 0 and counts["vae_decode"] > 0
    factor = tiny_pipe.vae_scale_factor  # 8: the tiny VAE has four blocks, as SD1.5's
    assert counts["unet_step"] == unet_step_flops(tiny_pipe.unet, 2, 64, 64, vae_scale_factor=factor)
    half = torch.nn.Module.to(meta_copy(tiny_pipe.unet), torch.float16)
    assert unet_step_flops(half, 2, 64, 64, vae_scale_factor=factor) == counts["unet_step"]
    compiled = torch.compile(tiny_pipe.unet)  # compiles nothing until called
    assert unet_step_flops(compiled, 2, 64, 64, vae_scale_factor=factor) == counts["unet_step"]
    assert {p.device.type for p in meta_copy(tiny_pipe.unet).parameters()} == {"meta"}
    assert {p.device.type for p in tiny_pipe.unet.parameters()} == {"cpu"}  # the original is untouched


def test_the_tiny_autoencoder_decodes_for_a_fraction_of_the_vae():
    taesd = vae_decode_flops(random_tiny_autoencoder(), 1, 512, 512)
    assert 0 < taesd < vae_decode_flops(replica_vae(), 1, 512, 512) / 5


def test_bad_sizes_and_modules_are_refused_with_the_values():
    with pytest.raises(ValueError, match=r"multiples of 8, got height=500, width=512"):
        unet_step_flops(replica_unet(), 1, 500, 512)
    with pytest.raises(ValueError, match=r"batch_size=0"):
        vae_decode_flops(replica_vae(), 0, 512, 512)
    with pytest.raises(TypeError, match=r"diffusers model with a config .* got Linear"):
        meta_copy(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", ("H100 SXM", 989.4)),
        ("NVIDIA H100 PCIe", ("H100 PCIe", 756.5)),
        ("NVIDIA H200", ("H200 SXM", 989.4)),
        ("NVIDIA A100-SXM4-80GB", ("A100", 312.0)),
        ("NVIDIA L4", ("L4", 121.0)),
        ("Tesla T4", ("T4", 65.0)),
        ("NVIDIA L40S", None),
        ("NVIDIA H100 NVL", None),
    ],
)
def test_the_peak_table_knows_the_gpus_of_the_issue(name, expected):
    assert peak_tflops(name) == expected


def test_achieved_tflops():
    assert tflops_per_second(2e12, 0.5) == 4.0
    assert tflops_per_second(1e12, 0) != tflops_per_second(1e12, 0)  # NaN
