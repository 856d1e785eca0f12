"""make test-replica and make gpu-check: what can be checked without running the notebooks or a GPU."""

import pytest
import torch

from tools import gpu_check, replica_nbval
from tools.common import NotebookResult
from tools.replica_nbval import GOLDENS, goldens, results_table

RSS = "process RSS"
RESULTS = [
    NotebookResult("01_load_model", "ok", 12.34, 6 * 2**30, RSS, gpu_peak_bytes=3 * 2**30, cpu_seconds=20.4),
    NotebookResult("05_memory", "failed", 80.0, 7 * 2**30, RSS, gpu_peak_bytes=9 * 2**30, cpu_seconds=150.0),
]


def test_every_golden_is_run_new_ones_included(tmp_path):
    assert [p.name for p in goldens()] == sorted(p.name for p in GOLDENS.glob("*.ipynb"))
    for name in ("01_load_model", "07_benchmarks"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert [p.stem for p in goldens(folder=tmp_path)] == ["01_load_model", "07_benchmarks"]
    assert [p.stem for p in goldens(["07"], folder=tmp_path)] == ["07_benchmarks"]
    with pytest.raises(ValueError, match=r"no notebook '99'; use one of \['01_load_model', '07_benchmarks'\]"):
        goldens(["99"], folder=tmp_path)


def test_results_table_has_a_row_per_notebook_and_a_total():
    table = results_table(RESULTS).splitlines()
    assert table[0] == "| notebook | nbval | seconds | CPU seconds | peak RSS (GiB) | peak GPU memory (GiB) |"
    assert table[2] == "| 01_load_model | passed | 12.3 | 20 | 6.00 | 3.00 |"
    assert table[3] == "| 05_memory | FAILED | 80.0 | 150 | 7.00 | 9.00 |"
    assert table[4] == "| all | 1/2 passed | 92.3 | 170 | 7.00 | 9.00 |"
    assert table[1] == "| --- | --- | ---: | ---: | ---: | ---: |"
    cpu_only = results_table([NotebookResult("01_load_model", "ok", 1.0, 2**30, RSS)])
    assert "GPU" not in cpu_only and cpu_only.splitlines()[-1] == "| all | 1/1 passed | 1.0 | 0 | 1.00 |"


def test_replica_env_is_offline_on_the_replica_profile():
    env = replica_nbval.replica_env(threads=2)
    assert (env["SD_PROFILE"], env["HF_HUB_OFFLINE"], env["OMP_NUM_THREADS"]) == ("replica", "1", "2")


def test_test_replica_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        replica_nbval.parse_args(["--max-rss-gib", "0"])
    assert "--max-rss-gib=0.0 must be positive" in capsys.readouterr().err
    assert replica_nbval.main(["--notebooks", "99"]) == 2
    assert "--notebooks: no notebook '99'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_gpu_check_without_cuda_says_what_to_run_instead(capsys):
    assert gpu_check.main([]) == 2
    assert "make gpu-check needs a CUDA GPU" in capsys.readouterr().err


def test_gpu_facts_and_report_path():
    facts = gpu_check.gpu_facts(query="NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\n")
    assert facts == {"gpu": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "memory": "81559 MiB"}
    assert gpu_check.report_path(facts["gpu"]).name == "gpu-check-nvidia-h100-80gb-hbm3.md"
    assert gpu_check.report_path(facts["gpu"]).parent.name == "docs"


def test_the_report_names_the_gpu_and_every_figure():
    facts = {
        "gpu": "NVIDIA H100 80GB HBM3",
        "driver": "550.54.15",
        "memory": "81559 MiB",
        "date": "2026-01-02",
        "torch": "2.13.0",
        "cuda": "12.8",
        "commit": "abc1234",
        "total_seconds": 400.0,
        "build_seconds": {"base": 9.5, "finetuned": 8.25},
        "nbval": RESULTS,
        "run_all_seconds": 150.0,
        "run_all": {
            "status": "complete",
            "notebooks": [{"notebook": "01_load_model", "status": "ok", "seconds": 9.0, "peak_mib": 2800.4}],
        },
        "bench": {1: 0.5, 8: 0.25},
    }
    report = gpu_check.render_report(facts)
    assert report.startswith("# make gpu-check on NVIDIA H100 80GB HBM3\n")
    assert "driver 550.54.15" in report and "commit abc1234" in report
    assert "base 9.5 s, finetuned 8.2 s" in report
    assert "| 05_memory | FAILED | 80.0 | 150 | 7.00 | 9.00 |" in report
    assert "## run-all under replica: 150 s, status complete" in report
    assert "| 01_load_model | ok | 9.0 | 2,800 |" in report
    assert "| 1 | 0.500 |" in report and "| 8 | 0.250 |" in report
    assert "run-all" not in gpu_check.render_report({**facts, "run_all": None})


@pytest.mark.e2e
def test_a_fresh_process_loads_a_model_and_reports_its_seconds():
    load = replica_nbval.fresh_load_seconds("tiny:base", "tiny")
    assert load["class"] == "StableDiffusionPipeline"
    assert load["import_s"] > 0 and load["load_s"] > 0


@pytest.mark.e2e
def test_a_fresh_load_that_fails_says_what_failed():
    message = r"loading 'tiny:nonsense' in a fresh process failed: ValueError: Unknown tiny model"
    with pytest.raises(RuntimeError, match=message):
        replica_nbval.fresh_load_seconds("tiny:nonsense", "tiny")
