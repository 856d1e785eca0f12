"""The user's own code path, unchanged, against the local Hub: download, load, the cache offline, and faults.

The user's code runs in separate processes (tests/hub_client.py) with an empty ``HF_HOME``: one online, driven
step by step while the server is down, crashes in the middle of a download and comes back; one offline. The
scenario runs once (importing torch and diffusers costs seconds per process); each test checks one part of it.
"""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tools import ROOT
from tools.local_hub import OPENJOURNEY_ID, OPENJOURNEY_LORA_ID, SD15_ID, LocalHub

# Real processes and a real server: make test-e2e runs it, make test leaves it out.
pytestmark = pytest.mark.e2e

CLIENT = Path(__file__).with_name("hub_client.py")
GPU_CALL = (
    'StableDiffusionPipeline.from_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5", dtype=torch.float16, '
    'variant="fp16", use_safetensors=True).to("cuda")'
)
FALLBACK = "prompthero/openjourney has no fp16 files: using its full-precision files"
SD15_FP16 = {
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "text_encoder/model.fp16.safetensors",
    "safety_checker/model.fp16.safetensors",
}


class Client:
    """The user's code in its own process; :meth:`run` sends it one step and returns the step's result."""

    def __init__(self, **env):
        # From the repository root, with it on the path, as `python -m tools.x` runs: the client imports tools.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, str(CLIENT)],
            cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, step: str) -> dict:
        self.process.stdin.write(step + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the client died during step {step!r} (exit code {self.process.wait()})"
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


class Relay:
    """A TCP relay in front of the local Hub, the ``HF_ENDPOINT`` the client uses, with two faults to switch on.

    ``down``: refuse every connection, as a machine with no server does. ``kill_after``: once one connection has
    carried that many bytes from the server, kill the server (SIGKILL) and drop the bytes that crossed the limit,
    so that the file being sent at that moment arrives cut short.
    """

    def __init__(self, hub: LocalHub):
        self.hub, self.down, self.kill_after, self.killed = hub, False, None, threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                if self.down:
                    raise ConnectionRefusedError
                upstream = socket.create_connection(("127.0.0.1", self.hub.port))
            except OSError:  # no server: close at once, as a refused connection does
                client.close()
                continue
            threading.Thread(target=self._relay, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client, [0]), daemon=True).start()

    def _relay(self, source, target, counter):
        try:
            while chunk := source.recv(65536):
                if counter is not None and self.kill_after is not None:
                    counter[0] += len(chunk)
                    if counter[0] > self.kill_after:
                        self.kill_after = None
                        self.killed.set()
                        self.hub.kill()
                        break
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                # shutdown() first: close() alone sends nothing while the other direction's thread is blocked in
                # recv() on the same socket, and the client would wait for its read timeout (10 s) instead of
                # seeing the connection drop at once, as it does when a server process dies.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self):
        self.server.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Run the whole user path once; return every step's result, by phase."""
    root = tmp_path_factory.mktemp("user-path")
    hf_home = root / "hf_home"
    hub = LocalHub(workdir=root / "olah").start()
    relay = Relay(hub)
    env = {"HF_ENDPOINT": relay.endpoint, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0"}
    results = {"hub": hub, "hf_home": hf_home}
    # The offline client starts now, so that it imports torch and diffusers while the online phase runs; it
    # reads nothing of the cache until its first step.
    offline, client = Client(**{**env, "HF_HUB_OFFLINE": "1"}), None
    try:
        client = Client(**env)
        relay.down = True  # server down, cache empty
        results["down"] = {step: client.run(step) for step in ("load_missing", "check")}
        relay.down = False
        relay.kill_after = 512 * 1024  # more than any config file, less than the UNet's weights
        results["cut"] = {step: client.run(step) for step in ("download", "cache_state")}
        results["cut"]["killed"] = relay.killed.is_set() and hub.process.poll() is not None
        hub.start()  # the server is back, on the same port
        steps = ("download", "cache_state", "load_gpu", "load_finetuned", "load_lora", "pickle_only", "check")
        results["online"] = {step: client.run(step) for step in steps}
        client.close()
        hub.stop()
        steps = ("load_gpu", "load_finetuned", "load_lora", "generate", "check")
        results["offline"] = {step: offline.run(step) for step in steps}
        offline.close()
    finally:
        for each in (client, offline):  # a step that failed leaves its client running
            if each is not None and each.process.poll() is None:
                each.process.kill()
        relay.close()
        hub.stop()
    return results


def corrupt(cache_state: dict, hub: LocalHub) -> list[str]:
    """Cached files whose bytes differ from the repository's."""
    import hashlib

    bad = []
    for name, digest in cache_state["files"].items():
        repo, _, _, *path = Path(name).parts  # models--org--name/snapshots/<sha>/...
        original = hub.mirrors / "models" / repo.removeprefix("models--").replace("--", "/") / Path(*path)
        if hashlib.sha256(original.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad


def weights(cache_state: dict, repo_id: str) -> set[str]:
    prefix = f"models--{repo_id.replace('/', '--')}"
    return {
        str(Path(*Path(name).parts[3:]))
        for name in cache_state["files"]
        if name.startswith(f"{prefix}/") and name.endswith((".safetensors", ".bin"))
    }


def test_server_down_and_cache_empty_names_make_download(scenario):
    down = scenario["down"]
    assert down["load_missing"]["error"] == "ModelNotAvailableError"
    assert "make download" in down["load_missing"]["message"]
    assert down["check"]["code"] == 1
    assert f"missing: {SD15_ID}: is not in the Hugging Face cache" in down["check"]["err"]
    lora_missing = f"missing: {OPENJOURNEY_LORA_ID}: openjourneyLora.safetensors is not in the Hugging Face cache"
    assert lora_missing in down["check"]["err"]
    assert "Run `make download`" in down["check"]["err"]


def test_a_download_cut_by_a_server_crash_leaves_nothing_corrupt_and_a_rerun_completes(scenario):
    cut = scenario["cut"]
    assert cut["killed"]
    assert cut["download"]["code"] == 1
    assert "Could not load model_id=" in cut["download"]["err"] and "make download" in cut["download"]["err"]
    assert corrupt(cut["cache_state"], scenario["hub"]) == []  # what a snapshot holds is whole
    assert weights(cut["cache_state"], SD15_ID) < SD15_FP16  # and the UNet's weights are not among it
    rerun = scenario["online"]
    assert rerun["download"]["code"] == 0
    assert rerun["cache_state"]["incomplete"] == []
    assert corrupt(rerun["cache_state"], scenario["hub"]) == []


def test_make_download_fetches_only_the_fp16_files_and_falls_back_once_for_openjourney(scenario):
    online = scenario["online"]
    assert online["download"]["out"].count(FALLBACK) == 1
    state = online["cache_state"]
    assert weights(state, SD15_ID) == SD15_FP16
    # openjourney has no fp16 files: its fp32 safetensors arrived, never its pickle .bin.
    assert weights(state, OPENJOURNEY_ID) == {w.replace(".fp16", "") for w in SD15_FP16}
    assert weights(state, OPENJOURNEY_LORA_ID) == {"openjourneyLora.safetensors"}  # lesson 06's LoRA, one file
    assert any(name.endswith("feature_extractor/preprocessor_config.json") for name in state["files"])


def test_load_pipeline_with_the_gpu_profiles_arguments_and_notebook_06s_path(scenario):
    online = scenario["online"]
    gpu = online["load_gpu"]
    assert gpu["call"] == GPU_CALL  # the gpu profile's exact from_pretrained arguments (device overridden)
    assert (gpu["dtype"], gpu["safety_checker"]) == ("torch.float16", "StableDiffusionSafetyChecker")
    assert online["load_finetuned"]["unet_dtype"] == "torch.float16"
    assert online["load_finetuned"]["out"].count(FALLBACK) == 1


@pytest.mark.parametrize("phase", ["online", "offline"])
def test_notebook_06s_lora_loads_by_hub_id_weighs_and_unloads(scenario, phase):
    lora = scenario[phase]["load_lora"]
    assert lora["lora"] == [OPENJOURNEY_LORA_ID, "openjourneyLora.safetensors"]  # the gpu profile's LoRA
    assert lora["cached"] == ["openjourneyLora.safetensors"]  # only the weights were fetched, into the cache
    assert lora["adapters"] == {"unet": ["mdjrny"]}  # Kohya's format, converted: the UNet's layers
    assert lora["lora_changes_levels"] > 10  # at weight 1 the picture changes
    assert lora["weight_0_is_base"] and lora["unloaded_is_base"]  # weight 0 and unloading: the base model's picture
    assert lora["adapters_after_unload"] == {}


def test_a_repository_without_safetensors_is_refused(scenario):
    refused = scenario["online"]["pickle_only"]
    assert refused["error"] == "NoSafetensorsError"
    assert "use_safetensors=None" in refused["message"]


def test_download_check_and_everything_loads_offline_from_the_cache(scenario):
    assert scenario["online"]["check"]["code"] == 0
    # make download fetched lesson 06's LoRA too, so an offline classroom has it
    assert scenario["online"]["check"]["out"].splitlines() == [
        f"ok: {SD15_ID}",
        f"ok: {OPENJOURNEY_ID}",
        f"ok: {OPENJOURNEY_LORA_ID}",
    ]
    offline = scenario["offline"]
    assert offline["load_gpu"]["call"] == GPU_CALL
    assert offline["generate"] == {"step": "generate", "image_size": [64, 64], "safety_checked": True}
    assert offline["load_finetuned"]["class"] == "StableDiffusionPipeline"
    assert offline["check"]["code"] == 0
