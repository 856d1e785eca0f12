"""make bench on the tiny model (and, with SD_TEST_REPLICA=1, the SD1.5 replica) on the CPU: every row is in the
table, measured or skipped with its reason; the run folder is new each time."""

import json
import os
import re
import time
from datetime import UTC

import pytest
import torch

from helpers.profiles import PROFILES, REPLICA_CPU
from tools.bench import cli
from tools.bench.cases import FAST_PATH, plan
from tools.bench.runner import CompileTimeout, Options, measure_case, time_limit
from tools.run_all.state import new_run_folder

SMALL = ["--height", "32", "--width", "32", "--steps", "2", "--pndm-steps", "2", "--batch-sizes", "1", "2"]


def run_bench(tmp_path, *args) -> tuple[int, dict, str]:
    code = cli.main(["--profile", "tiny", "--runs-dir", str(tmp_path), *args])
    (folder,) = tmp_path.glob("bench-*-tiny")
    data = json.loads((folder / "bench.json").read_text())
    return code, data, folder


def test_the_plan_holds_every_setting_of_the_issue():
    labels = [case.label for case in plan(PROFILES["gpu"])]
    assert labels == [
        "baseline",
        "bfloat16",
        "float32",
        "PNDM",
        "batch 8",
        "batch 16",
        "attention slicing",
        "classic attention",
        "VAE slicing",
        "VAE tiling",
        "model CPU offload",
        "sequential CPU offload",
        "channels_last",
        "fused QKV projections",
        "torch.compile",
        "fast path",
        "fast path, batch 16",
        "tiny autoencoder",
    ]
    cases = {case.label: case for case in plan(PROFILES["gpu"])}
    assert (
        cases["PNDM"].steps == 50
        and cases["baseline"].steps == 20
        and cases["baseline"].precision(torch.float16) == "float16"
    )
    assert cases["fast path"].settings == FAST_PATH and cases["fast path, batch 16"].batch_size == 16
    assert {cases[n].batch_size for n in ("VAE slicing", "VAE tiling", "model CPU offload")} == {16}
    # On a CPU the replica's own precision is fp32, so the precision rows are the two half formats.
    assert [c.label for c in plan(REPLICA_CPU)][1:3] == ["bfloat16", "float16"]


def test_a_tiny_bench_reports_every_row_measured_or_skipped_with_its_reason(tmp_path):
    code, data, folder = run_bench(tmp_path, *SMALL, "--reps", "2", "--no-compile")
    assert code == 0
    assert re.fullmatch(r"bench-\d{8}T\d{6}Z-tiny", folder.name)
    rows = {row["label"]: row for row in data["rows"]}
    profile = PROFILES["tiny"]
    assert list(rows) == [c.label for c in plan(profile, batch_sizes=(1, 2), steps=2, pndm_steps=2)]
    skipped = {label for label, row in rows.items() if row["status"] == "skipped"}
    assert skipped == {
        "model CPU offload",
        "sequential CPU offload",
        "torch.compile",
        "fast path",
        "fast path, batch 2",
    }
    assert "accelerator" in rows["sequential CPU offload"]["reason"]
    assert rows["torch.compile"]["reason"] == "torch.compile left out (--no-compile)"
    for label, row in rows.items():
        if row["status"] == "ok":
            assert len(row["seconds"]) == 2 and row["median_seconds"] > 0, label
            assert row["median_iterations_per_second"] > 0 and row["unet_tflops_per_second"] > 0, label
            assert row["peak_mib"] > 0 and row["memory_kind"] == "process RSS", label
    assert rows["PNDM"]["unet_calls"] == 3 and rows["baseline"]["unet_calls"] == 2  # PNDM repeats one step
    assert rows["batch 2"]["unet_step_tflop"] == pytest.approx(2 * rows["baseline"]["unet_step_tflop"])
    # The decode is counted for the decoder that ran (TAESD's 64 channels outweigh the tiny VAE's 32 and 64).
    assert rows["tiny autoencoder"]["vae_decode_tflop"] != rows["baseline"]["vae_decode_tflop"]
    assert rows["baseline"]["peak_share_percent"] is None  # no peak known for a CPU
    markdown = (folder / "bench.md").read_text()
    for label, row in rows.items():
        if row["status"] == "ok":
            assert f"| {label} |" in markdown
        else:
            assert f"- **{label}** (skipped): {row['reason']}" in markdown
    assert (folder / "bench.png").stat().st_size > 10_000
    environment = json.loads((folder / "environment.json").read_text())
    assert environment["profile"] == "tiny" and environment["packages"]["torch"].startswith("2.")


def test_quick_runs_a_subset_and_says_so_for_the_rest(tmp_path):
    code, data, _ = run_bench(tmp_path, *SMALL, "--quick")
    assert code == 0 and data["quick"] and data["reps"] == 2
    rows = {row["label"]: row for row in data["rows"]}
    assert {label for label, row in rows.items() if row["status"] == "ok"} == {
        "baseline",
        "PNDM",
        "attention slicing",
        "classic attention",
        "channels_last",
        "fused QKV projections",
        "tiny autoencoder",
    }
    assert rows["batch 2"]["reason"].startswith("not in QUICK=1's subset")
    assert rows["torch.compile"]["reason"].startswith("QUICK=1 leaves torch.compile out")
    assert "accelerator" in rows["model CPU offload"]["reason"]


def test_each_run_gets_a_new_folder_and_the_old_one_is_untouched(tmp_path):
    from datetime import datetime

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = new_run_folder(tmp_path, "tiny", now, prefix="bench-")
    (first / "bench.md").write_text("mine")
    second = new_run_folder(tmp_path, "tiny", now, prefix="bench-")
    assert (first.name, second.name) == ("bench-20260102T030405Z-tiny", "bench-20260102T030405Z-tiny-2")
    assert (first / "bench.md").read_text() == "mine"


def test_a_compile_that_runs_past_its_bound_is_stopped_and_reported(fresh_tiny_pipe):
    pipe = fresh_tiny_pipe
    unet = pipe.unet
    case = next(c for c in plan(PROFILES["tiny"], batch_sizes=(1,), steps=2) if c.label == "torch.compile")
    options = Options(height=32, width=32, reps=1, compile_timeout=0.1)
    # A compile from nothing: an earlier compile of the same UNet in this process, or torch's caches on disk, can
    # otherwise finish it within any small bound.
    torch._dynamo.reset()
    from torch._inductor import config

    start = time.perf_counter()
    with config.patch({"fx_graph_cache": False, "autotune_local_cache": False}):
        row = measure_case(pipe, case, options)
    assert time.perf_counter() - start < 60  # compiling the tiny UNet alone takes minutes on this CPU
    assert row["status"] == "skipped", row
    assert row["reason"] == "torch.compile did not finish within 0.1 s (--compile-timeout)"
    assert pipe.unet is unet  # put back; the pipeline still works
    assert pipe(num_inference_steps=1, height=32, width=32, prompt="x").images[0].size == (32, 32)


def test_compile_without_a_compiler_is_a_skipped_row_with_the_reason(tiny_pipe):
    from torch._inductor import config

    # torch's own patch: pytest's monkeypatch.undo() deletes the setting, which hides it for the rest of the process
    with config.patch({"cpp.cxx": (None, "no-such-c++")}):
        case = next(c for c in plan(PROFILES["tiny"]) if c.label == "fast path")
        row = measure_case(tiny_pipe, case, Options(height=32, width=32))
    assert row["status"] == "skipped" and "needs a C++ compiler" in row["reason"]
    assert config.cpp.cxx == (None, "g++")  # put back for the tests after this one


def test_time_limit_interrupts_the_block():
    with pytest.raises(CompileTimeout, match=r"within 0.2 s"), time_limit(0.2):
        time.sleep(5)
    with time_limit(None):
        pass


def test_time_limit_gets_through_when_its_first_interrupt_is_swallowed():
    # As a garbage-collector callback or a __del__ does: Python prints the exception as "ignored" and goes on.
    swallowed, start = 0, time.perf_counter()
    with pytest.raises(CompileTimeout, match=r"within 0.1 s"), time_limit(0.1):
        while time.perf_counter() - start < 5:
            try:
                time.sleep(0.01)
            except CompileTimeout:
                if swallowed:
                    raise
                swallowed += 1
    assert swallowed == 1 and time.perf_counter() - start < 1


def test_a_block_that_swallows_every_interrupt_still_ends_in_the_timeout():
    start = time.perf_counter()
    with pytest.raises(CompileTimeout, match=r"within 0.05 s"), time_limit(0.05):
        while time.perf_counter() - start < 0.5:
            try:
                time.sleep(0.01)
            except CompileTimeout:
                pass
    with time_limit(5):  # a block that ends in time raises nothing, and the alarm is off afterwards
        time.sleep(0.01)
    time.sleep(0.3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--height", "30"], r"--height: must be a multiple of 8, got 30"),
        (["--reps", "0"], r"--reps: must be 1 or more, got 0"),
        (["--groups", "speed"], r"--groups: invalid choice: 'speed'"),
    ],
)
def test_bad_arguments_say_what_works(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_an_unknown_profile_names_the_known_ones(tmp_path, capsys):
    assert cli.main(["--profile", "tpu", "--runs-dir", str(tmp_path)]) == 2
    assert "Unknown profile: profile='tpu'. Use one of ['auto'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no folder for a run that never started


@pytest.mark.skipif(not os.environ.get("SD_TEST_REPLICA"), reason="builds the 6 GB SD1.5 replica: SD_TEST_REPLICA=1")
def test_the_replica_on_a_cpu(tmp_path):
    # Two steps (the CPU replica profile runs one), so that the loop has a speed; half precision on a CPU takes
    # minutes per call at this size, so those groups are left out, and listed as such.
    args = ["--batch-sizes", "1", "--steps", "2", "--pndm-steps", "2", "--reps", "1", "--no-compile"]
    groups = ["--groups", "baseline", "scheduler", "attention", "memory", "fast-path"]
    code = cli.main(["--profile", "replica", "--runs-dir", str(tmp_path), *args, *groups])
    (folder,) = tmp_path.glob("bench-*-replica")
    rows = {row["label"]: row for row in json.loads((folder / "bench.json").read_text())["rows"]}
    assert code == 0
    assert list(rows) == [c.label for c in plan(REPLICA_CPU, batch_sizes=(1,), steps=2, pndm_steps=2)]
    assert rows["bfloat16"]["reason"].startswith("group 'precision' not selected")
    ran = {label for label, row in rows.items() if row["status"] == "ok"}
    assert ran == {"baseline", "PNDM", "attention slicing", "classic attention", "VAE slicing", "VAE tiling"} | {
        "channels_last",
        "fused QKV projections",
        "tiny autoencoder",
    }
    baseline = rows["baseline"]
    assert (
        baseline["status"] == "ok" and baseline["median_seconds"] > 0 and baseline["median_iterations_per_second"] > 0
    )
    # 64 px on a CPU: 8 x 8 latents, 1/64 of the area of 512 px (1.607 TFLOP per guided step there).
    assert 0 < baseline["unet_step_tflop"] < 1.607 / 20
    assert rows["tiny autoencoder"]["vae_decode_tflop"] < baseline["vae_decode_tflop"] / 5  # TAESD at SD1.5's size


def test_the_real_model_missing_from_the_cache_points_at_the_replica(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # nothing cached, and offline (conftest)
    assert cli.main(["--profile", "gpu", "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "not in the local Hugging Face cache" in err and "make bench PROFILE=replica" in err
    assert not (tmp_path / "runs").exists()  # nothing ran, no folder
