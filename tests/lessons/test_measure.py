import time

import pytest

from helpers import measure


def test_wall_time_and_cpu_memory_are_recorded():
    with measure("sleep and allocate", "cpu") as m:
        block = bytearray(200 * 2**20)  # 200 MiB, touched below so it is resident
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(0.05)
        del block
    assert m.seconds >= 0.05
    assert m.peak_bytes >= 200 * 2**20
    assert m.memory_kind == "process RSS"
    assert str(m).startswith("sleep and allocate: ") and "MiB (process RSS)" in str(m)
    row = m.as_dict()
    assert row["label"] == "sleep and allocate" and row["device"] == "cpu" and row["peak_mib"] >= 200


def test_device_of_a_pipeline_is_accepted(tiny_pipe):
    with measure("pipe", tiny_pipe.device) as m:
        pass
    assert m.device == "cpu"


def test_result_is_recorded_even_when_the_block_fails():
    with pytest.raises(RuntimeError), measure("fails", "cpu") as m:
        raise RuntimeError("out of memory")
    assert m.seconds >= 0 and m.peak_bytes > 0


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match=r"device='xpu'.*\['cpu', 'cuda', 'mps'\]"):
        with measure("x", "xpu"):
            pass


@pytest.mark.gpu
def test_cuda_peak_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    with measure("alloc", "cuda") as m:
        x = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
        del x
    assert m.peak_bytes >= 256 * 2**20 and m.memory_kind == "GPU memory allocated"
