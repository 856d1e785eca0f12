"""run-all, for real: small notebooks written here run through papermill in real kernels on the tiny model.

The notebooks are small so that these tests stay fast; `make test-run-all` runs the real notebooks too.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from tools import ROOT
from tools.browser_check import check_gallery, find_browser
from tools.run_all import cli as run_all
from tools.run_all.jobs import JobRunner, cpu_threads_env, gpu_slots
from tools.run_all.notebook import run_notebook
from tools.run_all.state import longest_first, new_run_folder, previous_seconds

NOTEBOOKS = ROOT / "notebooks"

PARAMS = 'profile = "auto"  # the machine\noutput_dir = None  # where images go\n'
GENERATE = [
    "from helpers import activate_profile, get_inputs, load_pipeline, save_images\n"
    "activate_profile(profile)\npipe = load_pipeline()\npipe.set_progress_bar_config(disable=True)",
    "inputs = get_inputs(batch_size=2, prompt=prompt, seed=seed, num_inference_steps=1)\n"
    "save_images(pipe(**inputs).images, output_dir, pipe=pipe, inputs=inputs, notebook='01_generate')",
]
# A prompt that must be escaped in the gallery.
PROMPT = 'a <b>bold</b> & "quoted" fox'


def write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(PARAMS + parameters)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def plain(folder: Path, stem: str = "02_plain") -> Path:
    """A notebook that needs no model: it starts in a second."""
    code = "import os\nprint('seed', seed, 'gpu', os.environ.get('CUDA_VISIBLE_DEVICES'))"
    return write_notebook(folder / f"{stem}.ipynb", "seed = 0\n", code)


def run(tmp_path: Path, *args: str) -> int:
    return run_all.main(["--notebooks-dir", str(tmp_path / "nbs"), "--runs-dir", str(tmp_path / "runs"), *args])


def gallery_links(index: Path) -> list[str]:
    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = []

        def handle_starttag(self, tag, attrs):
            self.found += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]

    parser = Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A complete run of two notebooks at JOBS=2: one generates two images on the tiny model."""
    tmp = tmp_path_factory.mktemp("run")
    (tmp / "nbs").mkdir()
    write_notebook(tmp / "nbs" / "01_generate.ipynb", f"seed = 0\nprompt = {PROMPT!r}\n", *GENERATE)
    plain(tmp / "nbs")
    start = time.perf_counter()
    code = run(tmp, "--profile", "tiny", "--jobs", "2", "-p", "seed", "5")
    (folder,) = [p for p in (tmp / "runs").iterdir() if p.name != "latest"]
    return {"code": code, "folder": folder, "runs": tmp / "runs", "seconds": time.perf_counter() - start}


@pytest.mark.e2e
def test_a_tiny_run_completes_and_its_summary_says_so(finished_run):
    folder = finished_run["folder"]
    assert finished_run["code"] == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] is True and summary["status"] == "complete"
    assert (summary["ok"], summary["failed"]) == (2, 0)
    rows = {row["notebook"]: row for row in summary["notebooks"]}
    assert rows["01_generate"]["images"] == 2 and rows["02_plain"]["images"] == 0
    for row in rows.values():
        assert row["seconds"] > 0 and row["memory_kind"] == "process RSS"
        assert 20 < row["peak_mib"] < 4000  # the kernel's own peak, not the runner's
    assert rows["01_generate"]["peak_mib"] > rows["02_plain"]["peak_mib"]  # torch and a model make a difference
    assert rows["01_generate"]["parameters"] == {"seed": 5}
    assert "| 01_generate | ok |" in (folder / "summary.md").read_text()
    assert folder.name.endswith("-tiny") and (finished_run["runs"] / "latest").resolve() == folder


@pytest.mark.e2e
def test_images_carry_the_parameters_and_the_run_holds_notebooks_html_and_environment(finished_run):
    folder = finished_run["folder"]
    sidecars = sorted((folder / "images" / "01_generate").glob("*.json"))
    metas = [json.loads(p.read_text()) for p in sidecars]
    assert [(m["seed"], m["prompt"], m["model"], m["notebook"]) for m in metas] == [
        (5, PROMPT, "tiny:base", "01_generate"),
        (6, PROMPT, "tiny:base", "01_generate"),
    ]
    executed = nbformat.read(folder / "notebooks" / "01_generate.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "seed = 5" in injected[0].source and 'profile = "tiny"' in injected[0].source
    for stem in ("01_generate", "02_plain"):
        assert "<html" in (folder / "notebooks" / f"{stem}.html").read_text(encoding="utf-8")[:500]
    env = json.loads((folder / "environment.json").read_text())
    assert env["profile"] == "tiny" and env["python"] == sys.version.split()[0]
    assert env["packages"]["diffusers"] == "0.42.1" and "torch" in env["packages"]
    assert env["cuda"]["available"] is False and env["device"].startswith("cpu")


@pytest.mark.e2e
def test_every_file_the_gallery_references_exists(finished_run):
    folder = finished_run["folder"]
    links = gallery_links(folder / "index.html")
    assert len([link for link in links if link.endswith(".png")]) == 2 * 2  # each image: <a> and <img>
    assert {"notebooks/01_generate.html", "notebooks/02_plain.ipynb"} <= set(links)
    for link in links:
        assert "://" not in link and not link.startswith("/"), link  # relative: the folder can be zipped
        assert (folder / link).is_file(), link


@pytest.mark.e2e
@pytest.mark.skipif(find_browser() is None, reason="no Chromium or Chrome here; `make test-browser` installs it")
def test_the_browser_check_sees_every_image_and_catches_a_missing_one(finished_run, tmp_path):
    shutil.copytree(finished_run["folder"], tmp_path / "run")
    index, browser = tmp_path / "run" / "index.html", find_browser()
    result = check_gallery(index, tmp_path / "shot.png", browser)
    assert (result["total"], result["loaded"], result["broken"]) == (2, 2, [])
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = next((tmp_path / "run" / "images" / "01_generate").glob("*.png"))
    missing.unlink()
    result = check_gallery(index, tmp_path / "shot.png", browser)
    assert (result["total"], result["loaded"]) == (2, 1)
    assert result["broken"] == [missing.relative_to(tmp_path / "run").as_posix()]


@pytest.mark.e2e
def test_gallery_escapes_captions_and_shows_the_tiny_banner(finished_run):
    html = (finished_run["folder"] / "index.html").read_text(encoding="utf-8")
    assert "a &lt;b&gt;bold&lt;/b&gt; &amp; &#34;quoted&#34; fox" in html and "<b>bold" not in html
    assert "seed 5 · EulerDiscreteScheduler · 1 steps · tiny:base" in html
    assert "TINY MODEL" in html and "toy world" in html


@pytest.mark.e2e
def test_a_second_run_makes_a_new_folder_and_leaves_the_first_alone(finished_run, tmp_path):
    (tmp_path / "nbs").mkdir()
    plain(tmp_path / "nbs")
    assert run(tmp_path, "--profile", "tiny") == 0
    first = next(p for p in (tmp_path / "runs").iterdir() if p.name != "latest")
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert run(tmp_path, "--profile", "tiny") == 0
    folders = sorted(p for p in (tmp_path / "runs").iterdir() if p.name != "latest")
    assert len(folders) == 2 and first in folders
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert (tmp_path / "runs" / "latest").resolve() == max(folders, key=lambda p: p.stat().st_mtime_ns)


@pytest.mark.e2e
def test_parallel_runs_start_with_what_took_longest_last_time(finished_run):
    seconds = previous_seconds(finished_run["runs"], "tiny")
    assert set(seconds) == {"01_generate", "02_plain"} and seconds["01_generate"] > seconds["02_plain"]
    assert previous_seconds(finished_run["runs"], "gpu") == {}
    assert longest_first(["02_plain", "01_generate", "03_new"], seconds) == ["03_new", "01_generate", "02_plain"]


def test_run_folders_started_in_the_same_second_get_their_own_names(tmp_path):
    from datetime import datetime

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    names = [new_run_folder(tmp_path, "tiny", now).name for _ in range(3)]
    assert names == ["20260102T030405Z-tiny", "20260102T030405Z-tiny-2", "20260102T030405Z-tiny-3"]


@pytest.mark.e2e
def test_a_failing_notebook_is_reported_with_its_error_and_the_others_still_run(tmp_path, capsys):
    (tmp_path / "nbs").mkdir()
    write_notebook(tmp_path / "nbs" / "01_fails.ipynb", "", "x = 1", "raise ValueError('no <such> prompt')", "y = 2")
    plain(tmp_path / "nbs")
    assert run(tmp_path, "--profile", "tiny") == 1
    folder = (tmp_path / "runs" / "latest").resolve()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] is True and (summary["ok"], summary["failed"]) == (1, 1)
    failed = summary["notebooks"][0]
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "cell_index": 3,  # in the executed notebook, after papermill's injected-parameters cell
        "execution_count": 4,
        "source": "raise ValueError('no <such> prompt')",
        "ename": "ValueError",
        "evalue": "no <such> prompt",
    }
    assert summary["notebooks"][1]["status"] == "ok"
    out = capsys.readouterr().out
    assert "01_fails: FAILED after" in out and "ValueError: no <such> prompt" in out and "02_plain: ok in" in out
    assert "cell 3 (In [4]): ValueError: no <such> prompt" in (folder / "summary.md").read_text()
    assert "no &lt;such&gt; prompt" in (folder / "index.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "sed", "3"], r"override 'sed=3': no selected notebook declares 'sed'; they declare \['seed'\]"),
        (["--params", "seed=three"], r"seed='three' is a str, but 02_plain declares seed as int \(default 0\)"),
        (["--params", "02.prompt=x"], r"02_plain declares no parameter 'prompt'; it declares \['seed'\]"),
        (["--params", "profile=gpu"], r"set the profile with PROFILE="),
        (["--params", "seed"], r"override 'seed' is not name=value"),
        (["--notebooks", "07"], r"--notebooks: no notebook '07'; use one of \['02_plain'\]"),
        (["--jobs", "0"], r"--jobs must be an integer >= 1, got --jobs=0"),
        (["--params", "seed=-1"], r"override 'seed=-1': seed must be an integer >= 0, got seed=-1; e.g. seed=0"),
        (["--profile", "h100"], r"Unknown profile: profile='h100'"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(tmp_path, capsys, args, message):
    (tmp_path / "nbs").mkdir()
    plain(tmp_path / "nbs")
    assert run(tmp_path, "--profile", "tiny", *args) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()  # no run folder, no kernel


def test_the_profile_file_is_checked_too(tmp_path, capsys):
    (tmp_path / "nbs" / "params").mkdir(parents=True)
    plain(tmp_path / "nbs")
    params = tmp_path / "nbs" / "params" / "tiny.yaml"
    params.write_text("seed: 1\nnotebooks:\n  02:\n    steps: 3\n")
    assert run(tmp_path, "--profile", "tiny") == 2
    assert "tiny.yaml: notebooks.02_plain.steps: 02_plain declares no parameter 'steps'" in capsys.readouterr().err
    params.write_text("seed: 1\n")
    assert run(tmp_path, "--profile", "tiny", "--notebooks", "02") == 0
    state = json.loads((tmp_path / "runs" / "latest" / "run.json").read_text())
    assert state["notebooks"]["02_plain"]["parameters"] == {"seed": 1}


COUNTS = "num_inference_steps = None\nbatch_size = None\nheight = None\nwidth = None\nguidance_scale = 7.5\n"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("num_inference_steps=-5", r"num_inference_steps must be an integer >= 1, got num_inference_steps=-5; e.g. "),
        ("num_inference_steps=ten", r"num_inference_steps must be an integer >= 1, got num_inference_steps='ten'"),
        ("03.batch_size=0", r"override '03.batch_size=0': batch_size must be an integer >= 1, got batch_size=0"),
        ("height=100", r"height must be a multiple of 8 .*got height=100; use 96 or 104"),
        ("width=4", r"width must be an integer >= 8, got width=4"),
        ("guidance_scale=-1", r"guidance_scale must be a number >= 0, got guidance_scale=-1"),
    ],
)
def test_counts_and_sizes_are_range_checked_as_the_lessons_check_them(tmp_path, capsys, override, message):
    (tmp_path / "nbs").mkdir()
    write_notebook(tmp_path / "nbs" / "03_counts.ipynb", COUNTS, "print(num_inference_steps)")
    assert run(tmp_path, "--profile", "tiny", "--params", override) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()  # no run folder, no kernel


def test_the_profile_files_counts_are_range_checked_too(tmp_path, capsys):
    (tmp_path / "nbs" / "params").mkdir(parents=True)
    write_notebook(tmp_path / "nbs" / "03_counts.ipynb", COUNTS, "print(num_inference_steps)")
    (tmp_path / "nbs" / "params" / "tiny.yaml").write_text("notebooks:\n  03:\n    num_inference_steps: 0\n")
    assert run(tmp_path, "--profile", "tiny") == 2
    err = capsys.readouterr().err
    assert "tiny.yaml: notebooks.03_counts.num_inference_steps: num_inference_steps must be an integer >= 1" in err
    (tmp_path / "nbs" / "params" / "tiny.yaml").write_text("num_inference_steps: null\nheight: 64\n")
    plan = run_all.plan_new_run(run_all.parse_args(["--notebooks-dir", str(tmp_path / "nbs"), "--profile", "tiny"]))
    assert plan[2] == {"03_counts": {"num_inference_steps": None, "height": 64}}  # None: the profile's value


@pytest.mark.e2e
def test_a_bad_count_stops_make_run_all_at_once_before_any_kernel(tmp_path):
    """`make run-all PARAMS="num_inference_steps=-5"` once started eight kernels and failed seven notebooks."""
    command = [sys.executable, "-m", "tools.run_all", "--params", "num_inference_steps=-5", "--profile", "tiny"]
    start = time.perf_counter()
    done = subprocess.run([*command, "--runs-dir", str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    message = "run-all: override 'num_inference_steps=-5': num_inference_steps must be an integer >= 1, got "
    assert done.stderr.startswith(message) and "e.g. num_inference_steps=1" in done.stderr
    assert not (tmp_path / "runs").exists() and seconds < 60  # no run folder, no kernel: only the imports' time


def test_gpu_slots_give_each_job_its_own_gpu():
    assert gpu_slots(2, ["0", "1", "2", "3"]) == ["0", "1"]
    assert gpu_slots(3, ["GPU-a", "GPU-b"]) == ["GPU-a", "GPU-b", "GPU-a"]  # more jobs than GPUs: they share
    assert gpu_slots(2, ["0"]) == [None, None]  # one GPU: every kernel sees it anyway
    assert gpu_slots(1, []) == [None]
    with pytest.raises(ValueError, match=r"jobs must be an integer >= 1, got jobs=0"):
        gpu_slots(0, ["0"])


def test_parallel_kernels_share_the_cores_unless_the_user_chose():
    assert cpu_threads_env(2, 2, {}) == {"OMP_NUM_THREADS": "1"}
    assert cpu_threads_env(3, 16, {}) == {"OMP_NUM_THREADS": "5"}
    assert cpu_threads_env(1, 16, {}) == {}
    assert cpu_threads_env(2, 16, {"OMP_NUM_THREADS": "8"}) == {}


@pytest.mark.e2e
def test_each_parallel_job_hands_its_gpu_to_its_kernel(tmp_path):
    """No GPU here: the plain notebook only prints CUDA_VISIBLE_DEVICES, which its kernel got from its slot."""
    sources = [plain(tmp_path, f"{i:02d}_plain") for i in (1, 2)]
    seen = {}

    def one(stem, extra_env):
        result = run_notebook(tmp_path / f"{stem}.ipynb", tmp_path / "run", stem, {"seed": 1}, extra_env=extra_env)
        executed = nbformat.read(tmp_path / "run" / "notebooks" / f"{stem}.ipynb", as_version=4)
        seen[stem] = (extra_env["CUDA_VISIBLE_DEVICES"], executed.cells[-1].outputs[0]["text"].strip())
        return result

    assert JobRunner(gpu_slots(2, ["4", "7"])).run_all([p.stem for p in sources], one) is None
    assert sorted(seen.values()) == [("4", "seed 1 gpu 4"), ("7", "seed 1 gpu 7")]


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_what_finished_and_resume_runs_only_the_rest(tmp_path, signum):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    flag = tmp_path / "go-on"
    plain(nbs, "01_quick")
    write_notebook(
        nbs / "02_waits.ipynb",
        f"flag = {str(flag)!r}\n",
        "import os, time\nprint('started')",
        # Gives up after two minutes, so that a run orphaned by a killed test session cannot wait forever.
        "deadline = time.monotonic() + 120\n"
        "while not os.path.exists(flag):\n"
        "    assert time.monotonic() < deadline, 'nobody created the flag'\n"
        "    time.sleep(0.05)",
    )
    plain(nbs, "03_later")
    cmd = [
        sys.executable,
        "-m",
        "tools.run_all",
        "--notebooks-dir",
        str(nbs),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    # One job, so that 01 has finished and 03 has not started when 02 is interrupted.
    proc = subprocess.Popen(
        [*cmd, "--profile", "tiny", "--jobs", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    state_file = tmp_path / "runs" / "latest" / "run.json"
    try:
        deadline = time.monotonic() + 90
        executed = tmp_path / "runs" / "latest" / "notebooks" / "02_waits.ipynb"
        while not (executed.exists() and "started" in executed.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "02_waits never started"
            time.sleep(0.1)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # the test failed: leave no run behind
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, out
    folder = state_file.parent.resolve()
    state = json.loads(state_file.read_text())
    assert state["status"] == "incomplete"
    assert {s: nb["status"] for s, nb in state["notebooks"].items()} == {
        "01_quick": "ok",
        "02_waits": "interrupted",
        "03_later": "pending",
    }
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] is False and summary["ok"] == 1 and summary["interrupted"] == 1
    assert (folder / "index.html").exists() and "Finish it with: make run-all RESUME=" in out

    flag.touch()
    assert run_all.main([*cmd[3:], "--resume", "latest"]) == 0
    state = json.loads(state_file.read_text())
    assert state["status"] == "complete"
    assert {s: (nb["status"], nb["attempts"]) for s, nb in state["notebooks"].items()} == {
        "01_quick": ("ok", 1),  # not run again
        "02_waits": ("ok", 2),
        "03_later": ("ok", 1),
    }
    kept = folder / "attempts" / "02_waits-1" / "02_waits.ipynb"
    assert "started" in kept.read_text()  # the interrupted attempt is kept, not overwritten
    assert json.loads((folder / "summary.json").read_text())["complete"] is True
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.name != "latest"] == [folder.name]


def test_resume_refuses_new_parameters_and_unknown_runs(tmp_path, capsys):
    (tmp_path / "nbs").mkdir()
    plain(tmp_path / "nbs")
    assert run(tmp_path, "--resume", "latest") == 2
    assert "--resume latest: no run there" in capsys.readouterr().err
    assert run(tmp_path, "--profile", "tiny") == 0
    assert run(tmp_path, "--resume", "latest", "-p", "seed", "2") == 2
    assert "--resume runs the rest of a run with its own profile (tiny)" in capsys.readouterr().err
    assert run(tmp_path, "--resume", "latest", "--profile", "cpu") == 2
    assert run(tmp_path, "--resume", "latest", "--profile", "tiny") == 0  # nothing left to run: just the report
    assert "resuming" in capsys.readouterr().out


@pytest.mark.e2e
@pytest.mark.skipif(not os.environ.get("SD_TEST_RUN_ALL"), reason="every notebook: `make test-run-all`")
def test_every_notebook_runs_all(tmp_path):
    code = run_all.main(["--profile", "tiny", "--jobs", "2", "--runs-dir", str(tmp_path)])
    folder = (tmp_path / "latest").resolve()
    summary = json.loads((folder / "summary.json").read_text())
    assert code == 0, (folder / "summary.md").read_text()
    assert summary["complete"] and summary["ok"] == len(summary["notebooks"]) == len(list(NOTEBOOKS.glob("*.ipynb")))
    for link in gallery_links(folder / "index.html"):
        assert (folder / link).is_file(), link


@pytest.mark.parametrize("profile", ["tiny", "gpu", "mps", "cpu"])
def test_the_profile_files_fit_the_notebooks(profile):
    from tools.run_all.params import declared_parameters, load_param_file, resolve_parameters

    notebooks = {p.stem: p for p in sorted(NOTEBOOKS.glob("*.ipynb"))}
    assert notebooks and all(p.stem[:2].isdigit() for p in notebooks.values())
    declared = {stem: declared_parameters(path) for stem, path in notebooks.items()}
    path = ROOT / "notebooks" / "params" / f"{profile}.yaml"
    resolved = resolve_parameters(declared, list(notebooks), *load_param_file(path), source=path.name)
    assert all(params["seed"] == 0 for params in resolved.values())


@pytest.mark.gpu
def test_the_kernel_probe_keeps_the_cuda_peak_across_the_resets_measure_does():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from helpers import measure
    from tools.run_all.kernel_probe import peaks

    block = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    del block
    with measure("after the big block", "cuda"):
        pass
    assert torch.cuda.max_memory_allocated() < 256 * 2**20 <= peaks()["cuda_peak_bytes"]
