"""``make generate``: prompts files, seed lists, bad input, and real runs on the tiny model.

The runs use real processes: ``accelerate launch --multi_gpu --num_processes 2`` (accelerate's torchrun launcher,
which also runs without a GPU) against one process, a run killed in the middle and finished by a rerun, and a
rerun that has nothing to do.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image
from test_run_all import gallery_links

from helpers import read_metadata
from tools import ROOT
from tools.generate import cli
from tools.generate.bench import launch_command
from tools.generate.plan import Settings, batches, build_items, pending
from tools.generate.prompts import InputError, PromptRow, parse_seeds, read_prompts
from tools.generate.report import seed_list
from tools.local_hub import SD15_ID

FAST = ["--profile", "tiny", "--num-inference-steps", "2"]


# --- seeds and prompts files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, seeds",
    [("0-7", list(range(8))), ("1,5,9", [1, 5, 9]), ("0-3,10", [0, 1, 2, 3, 10]), ("3", [3]), ("2,2,1-2", [2, 1])],
)
def test_seed_lists(spec, seeds):
    assert parse_seeds(spec) == seeds
    assert seed_list(sorted(seeds)) in (spec, seed_list(sorted(seeds)))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("5-2", r"--seeds: the range '5-2' runs backwards; write 2-5"),
        ("a", r"--seeds: 'a' is not a seed"),
        ("-1", r"seed -1 is out of range"),
        ("1,,2", r"'1,,2' has an empty entry"),
    ],
)
def test_bad_seed_lists_are_named(spec, message):
    with pytest.raises(InputError, match=message):
        parse_seeds(spec)


def test_a_text_file_gives_one_prompt_per_line_and_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "class.txt"
    path.write_text("# our workshop\na red fox\n\n  a blue bird  \n", encoding="utf-8")
    assert read_prompts(path) == [PromptRow("class.txt:2", "a red fox"), PromptRow("class.txt:4", "a blue bird")]


def test_a_csv_file_has_prompts_negative_prompts_and_seeds_of_its_own(tmp_path):
    path = tmp_path / "class.csv"
    path.write_text('prompt,negative_prompt,seeds\n"a fox, red",blurry,0-2\na bird,,\n', encoding="utf-8")
    assert read_prompts(path) == [
        PromptRow("class.csv:2", "a fox, red", "blurry", (0, 1, 2)),
        PromptRow("class.csv:3", "a bird", None, None),
    ]


def test_a_jsonl_file_takes_other_keys_and_seeds_as_numbers_or_lists(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "a fox", "seeds": [1, 3]}\n\n{"text": "a bird", "seeds": 5}\n', encoding="utf-8")
    assert read_prompts(path, prompt_key="text") == [
        PromptRow("set.jsonl:1", "a fox", None, (1, 3)),
        PromptRow("set.jsonl:3", "a bird", None, (5,)),
    ]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.txt", "# nothing yet\n\n", r"empty.txt: the file holds no prompt"),
        (
            "rows.csv",
            "prompt,seeds\na fox,1\na bird,1,2\n",
            r"rows.csv, line 3: 3 fields where the header has 2 .*'a bird'",
        ),
        ("quotes.csv", 'prompt\n"a fox\n', r"quotes.csv, line 2: not valid CSV .*'\"a fox'"),
        ("header.csv", "text,seeds\na fox,1\n", r"header.csv, line 1: the header \['text', 'seeds'\] has no 'prompt'"),
        (
            "seeds.csv",
            "prompt,seeds\na fox,0-3\na bird,9-1\n",
            r"seeds.csv, line 3, 'seeds': the range '9-1' runs back",
        ),
        (
            "lines.jsonl",
            '{"prompt": "a fox"}\n{"prompt": "a bird"\n',
            r"lines.jsonl, line 2: not a JSON object .*a bird",
        ),
        ("list.jsonl", '["a fox"]\n', r"list.jsonl, line 1: \['a fox'\] is not a JSON object"),
        ("key.jsonl", '{"text": "a fox"}\n', r"key.jsonl, line 1: no 'prompt' in \['text'\]"),
        ("blank.jsonl", '{"prompt": "  "}\n', r"blank.jsonl, line 1: the 'prompt' is empty"),
    ],
)
def test_bad_prompts_files_are_named_with_their_line_and_value(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_prompts(path)


def test_items_go_prompt_by_prompt_and_batches_are_cut_before_they_are_shared():
    rows = [PromptRow("p.txt:1", "a fox"), PromptRow("p.txt:2", "a bird", seeds=(7,))]
    items = build_items(rows, [0, 1, 2])
    assert [item.key for item in items] == ["p0000-s0", "p0000-s1", "p0000-s2", "p0001-s7"]
    assert [[i.index for i in batch] for batch in batches(items, 3)] == [[0, 1, 2], [3]]


# --- bad input stops the command before any work ----------------------------------------------------------------


def _bad_input_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    good = tmp_path / "good.txt"
    good.write_text("a red fox\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a fox"}\n{prompt: a bird}\n', encoding="utf-8")
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder", encoding="utf-8")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "holiday.jpg").write_bytes(b"\xff\xd8")
    return [
        (["--prompts", str(empty)], r"empty.txt: the file holds no prompt"),
        (["--prompts", str(broken)], r"broken.jsonl, line 2: not a JSON object .*'\{prompt: a bird\}'"),
        (["--prompts", str(good), "--seeds", "5-2"], r"--seeds: the range '5-2' runs backwards; write 2-5"),
        (["--prompts", str(good), "--out", str(a_file)], r"--out .*taken is a file, not a folder"),
        (["--prompts", str(good), "--out", str(theirs)], r"holds files this tool did not make \(holiday.jpg\)"),
        (["--prompts", str(good), "--scheduler", "FastScheduler"], r"--scheduler 'FastScheduler' is not .*Euler"),
        (["--prompts", str(good), "--height", "100"], r"height must be a multiple of 8.*got height=100; use 96 or 104"),
        (["--prompts", str(good), "--model-id", str(tmp_path / "nowhere")], r"--model-id .*nowhere.* does not exist"),
        (["--prompts", str(good), "--batch-size", "0"], r"--batch-size must be an integer >= 1, got --batch-size=0"),
        (["--prompts", str(good), "--guidance-scale", "-1"], r"--guidance-scale must be a number >= 0 \(7.5"),
    ]


def test_bad_input_is_refused_before_any_work_naming_the_file_line_and_value(tmp_path, capsys):
    for args, message in _bad_input_cases(tmp_path):
        out = tmp_path / "out"
        argv = ["--out", str(out), *FAST, *args]  # a later --out wins
        assert cli.main(argv) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("generate: error: "), err
        assert __import__("re").search(message, err), (message, err)
        assert not out.exists(), f"{args} made {out} before refusing"


def test_a_cpu_launch_that_started_one_process_says_how_to_start_several(monkeypatch, capsys):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")  # what `accelerate launch --cpu --num_processes 2` sets,
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # before it starts one process only (MPI aside)
    state = cli.start_processes(cli.activate_profile("tiny"))
    assert state.num_processes == 1
    assert "accelerate launch --multi_gpu --num_processes N" in capsys.readouterr().err


# --- real runs --------------------------------------------------------------------------------------------------


def launch(processes: int, *args: str, background: bool = False):
    """``accelerate launch --multi_gpu --num_processes N -m tools.generate ...`` in a new process group."""
    cmd = launch_command(processes, list(args))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if background:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.int16)


@pytest.fixture
def prompts(tmp_path) -> Path:
    path = tmp_path / "class.csv"
    path.write_text(
        'prompt,negative_prompt,seeds\na red fox,,\n"a <b>bold</b> bird, in snow",blurry,\na lone tree,,9\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def one_thread():
    """One PyTorch thread in this process, as in each launched process (OMP_NUM_THREADS=1): on a CPU, another
    number of threads may sum in another order and move a pixel by one level."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.e2e
def test_two_processes_make_each_image_once_and_the_same_pixels_as_one(tmp_path, prompts, one_thread):
    common = ["--prompts", str(prompts), "--seeds", "0-2", "--batch-size", "2", *FAST]
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    assert cli.main([*common, "--out", str(alone)]) == 0
    done = launch(2, *common, "--out", str(shared))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 process(es)" in done.stdout

    rows = manifest(shared)
    assert [row["item"] for row in rows] == [f"p0000-s{s}" for s in range(3)] + [f"p0001-s{s}" for s in range(3)] + [
        "p0002-s9"
    ]
    assert {row["status"] for row in rows} == {"made"}
    assert {row["process"] for row in rows} == {0, 1}  # 4 batches of 2, 3 and 1, shared 2 and 2
    assert all(row["device"] == "cpu" and row["seconds"] > 0 for row in rows)
    for row, alone_row in zip(rows, manifest(alone), strict=True):
        assert row["file"] == alone_row["file"]
        assert np.array_equal(pixels(shared / row["file"]), pixels(alone / alone_row["file"])), row["item"]
    assert len(list((shared / "images").glob("*.png"))) == len(rows)

    meta = read_metadata(shared / rows[3]["file"])
    assert meta["prompt"] == "a <b>bold</b> bird, in snow" and meta["negative_prompt"] == "blurry"
    assert (meta["seed"], meta["steps"], meta["width"], meta["model"]) == ("0", "2", "64", "tiny:base")
    assert meta["source"] == "class.csv:3"
    summary = json.loads((shared / "summary.json").read_text())
    assert (summary["jobs"], summary["made"], summary["missing"]) == (2, 7, 0)
    index = shared / "index.html"
    assert sorted(link for link in gallery_links(index) if link.endswith(".png")) == sorted(
        2 * [r["file"] for r in rows]
    )
    assert "&lt;b&gt;bold&lt;/b&gt;" in index.read_text() and "processes=2" in index.read_text()


def test_an_image_is_the_same_whatever_the_batch_size(tmp_path, prompts):
    common = ["--prompts", str(prompts), "--seeds", "0-2", *FAST]
    assert cli.main([*common, "--batch-size", "1", "--out", str(tmp_path / "one")]) == 0
    assert cli.main([*common, "--batch-size", "4", "--out", str(tmp_path / "four")]) == 0
    for one, four in zip(manifest(tmp_path / "one"), manifest(tmp_path / "four"), strict=True):
        # Batched matrix products may round differently in the last bit (as in notebook 04): one level of 255.
        difference = np.abs(pixels(tmp_path / "one" / one["file"]) - pixels(tmp_path / "four" / four["file"]))
        assert difference.max() <= 1, one["item"]


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted((folder / "images").iterdir())}


@pytest.mark.e2e
def test_a_killed_run_is_finished_by_a_rerun_without_rewriting_anything(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"prompt number {n}\n" for n in range(4)), encoding="utf-8")
    out = tmp_path / "out"
    common = ["--prompts", str(path), "--seeds", "0-3", "--batch-size", "1", "--out", str(out), *FAST]
    run = launch(2, *common, background=True)
    try:
        deadline = time.monotonic() + 300
        while len(list((out / "images").glob("*.json"))) < 3:
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0]
            time.sleep(0.1)
        workers = [p for p in psutil.Process(run.pid).children(recursive=True) if "tools.generate" in p.cmdline()]
        assert len(workers) == 2
        workers[1].send_signal(signal.SIGKILL)  # one process dies; the launcher stops the other
        run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0
    finished = {p.stem[:8] for p in (out / "images").glob("*.json")}
    assert 3 <= len(finished) < 16
    snapshot = _snapshot(out)
    before = {name: value for name, value in snapshot.items() if name[:8] in finished}
    # What a process killed while saving leaves: a PNG cut short, without its sidecar.
    todo = sorted({f"p{p:04d}-s{s}" for p in range(4) for s in range(4)} - finished)
    cut = out / "images" / f"{todo[0]}-prompt-number-{int(todo[0][1:5])}-0000.png"
    cut.write_bytes(next(iter(before.values()))[1][:200])
    left = {name: data for name, (_, data) in _snapshot(out).items() if name not in before}

    assert cli.main(common) == 0
    after = _snapshot(out)
    assert {name: after[name] for name in before} == before, "a finished image was rewritten"
    for name, data in left.items():  # set aside, never lost
        assert (out / "incomplete" / name).read_bytes() == data
    assert len(list((out / "images").glob("*.png"))) == 16 and not list((out / "images").glob("*-0001.*"))
    rows = manifest(out)
    assert sorted(row["item"] for row in rows) == sorted(f"p{p:04d}-s{s}" for p in range(4) for s in range(4))
    assert {row["item"] for row in rows if row["status"] == "existing"} == finished
    with Image.open(out / "images" / cut.name) as img:
        assert img.size == (64, 64)

    # Nothing left to do: a rerun makes nothing and touches no image.
    again = _snapshot(out)
    assert cli.main(common) == 0
    assert _snapshot(out) == again
    assert {row["status"] for row in manifest(out)} == {"existing"}


def test_a_rerun_with_other_settings_is_refused_naming_what_differs(tmp_path, capsys):
    path = tmp_path / "one.txt"
    path.write_text("a red fox\n", encoding="utf-8")
    out = tmp_path / "out"
    common = ["--prompts", str(path), "--out", str(out), *FAST]
    assert cli.main(common) == 0
    before = _snapshot(out)
    assert cli.main([*common, "--guidance-scale", "3"]) == 2
    assert "with guidance_scale=7.5, but this run asks for guidance_scale=3.0" in capsys.readouterr().err
    path.write_text("a blue bird\n", encoding="utf-8")
    assert cli.main(common) == 2
    assert "made for one.txt:1 with prompt='a red fox', but this run asks for prompt='a blue bird'" in (
        capsys.readouterr().err
    )
    assert _snapshot(out) == before


def test_pending_reports_what_is_made(tmp_path):
    rows = [PromptRow("p.txt:1", "a fox")]
    settings = Settings("tiny", "tiny:base", None, 2, 7.5, 64, 64, 1)
    todo, done = pending(tmp_path, build_items(rows, [0, 1]), settings)
    assert ([item.key for item in todo], done) == (["p0000-s0", "p0000-s1"], {})


@pytest.mark.e2e
def test_a_hub_model_id_through_the_local_hub(tmp_path, prompts, local_hub):
    """Two processes load a Hub id from the local Hub (olah, offline): the main process downloads it first."""
    out = tmp_path / "out"
    args = ["--prompts", str(prompts), "--seeds", "0-1", "--batch-size", "2", "--out", str(out), *FAST]
    done = launch(2, *args, "--model-id", SD15_ID)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = manifest(out)
    assert len(rows) == 5 and {row["status"] for row in rows} == {"made"} and {r["process"] for r in rows} == {0, 1}
    for row in rows:
        meta = read_metadata(out / row["file"])
        assert (meta["model"], meta["model_id"], meta["width"]) == (SD15_ID, SD15_ID, "64")
    snapshots = local_hub.hf_home / "hub" / f"models--{SD15_ID.replace('/', '--')}" / "snapshots"
    (snapshot,) = snapshots.iterdir()
    assert snapshot.name == local_hub.heads[SD15_ID]
    assert (snapshot / "unet" / "diffusion_pytorch_model.safetensors").exists()
