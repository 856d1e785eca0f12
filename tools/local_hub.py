"""A local Hugging Face Hub: the stand-in repositories in the Hub's layout, served over HTTP by olah.

Machines without the Hub (CI, GPU runners behind a firewall) can still run the user's own code path: a download
with ``huggingface_hub``, ``StableDiffusionPipeline.download`` and ``from_pretrained`` with a Hub id, the fp16
variant files, the cache, ``HF_HUB_OFFLINE=1`` afterwards. Nothing is mocked: the clients talk HTTP to a real
Hub-protocol server, `olah <https://github.com/vtuber-plan/olah>`_ (pinned in ``requirements-hub.txt``, in its own
virtual environment ``.venv-hub`` because its dependencies conflict with the tutorial's pins), run in offline mode
on 127.0.0.1 with a ``mirrors-path`` of local git repositories.

The repositories (:data:`REPOS`) hold tiny weights (megabytes) and are published as the real ones are:

* ``stable-diffusion-v1-5/stable-diffusion-v1-5``: fp32 ``*.safetensors`` and ``*.fp16.safetensors`` for every
  weight, tokenizer, scheduler, ``feature_extractor/``, ``safety_checker/``;
* ``prompthero/openjourney``: fp32 safetensors plus a pickle ``unet/diffusion_pytorch_model.bin``, no fp16;
* ``prompthero/openjourney-lora``: one LoRA file at the root, ``openjourneyLora.safetensors``, in Kohya's format
  (``lora_unet_..._to_q.lora_down.weight`` and an ``.alpha`` per layer), as PromptHero publishes it; here the
  tiny model's LoRA of the same style, converted, so that it loads into the SD1.5 stand-in;
* ``sd-tutorial-tests/pickle-only``: pickle weights only (a fault the tests need).

olah quirk handled here: offline, ``GET /api/models/<org>/<name>`` without a revision (``download`` and
``from_pretrained`` call it) ignores the mirrors and answers 401, unless
``<repos-path>/api/models/<org>/<name>/revision/main/meta_head.json`` holds ``{"sha": HEAD, "lastModified": ...}``;
:class:`LocalHub` writes it before the server starts. ``tests/test_hub.py`` fails if a new olah changes that.

Example:
    >>> with LocalHub() as hub:                          # doctest: +SKIP
    ...     print(hub.endpoint)                          # set HF_ENDPOINT to this in the client's environment
    http://127.0.0.1:40123
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.standins.tiny import KINDS, build_once, cache_root, models_root, tiny_model_path
from tools import ROOT as REPO_ROOT
from tools.common import free_port

OLAH_VERSION = "0.5.4"
# Bump when the repositories below change, so that old cached copies are not reused (a retrained tiny model changes
# the folder by itself: see models_digest).
BUILD_VERSION = "v5"  # v4: the LoRA repository; v5: the real repositories' PNDM scheduler
OLAH_PYTHON_ENV_VAR = "SD_OLAH_PYTHON"
HUB_VENV = REPO_ROOT / ".venv-hub"
HOST = "127.0.0.1"

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
OPENJOURNEY_ID = "prompthero/openjourney"
OPENJOURNEY_LORA_ID = "prompthero/openjourney-lora"  # helpers.lora.OPENJOURNEY_LORA_ID, the profile's LoRA
PICKLE_ONLY_ID = "sd-tutorial-tests/pickle-only"

# Fixed author and dates, so that the same files give the same commit sha every time.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "sd-tutorial",
    "GIT_AUTHOR_EMAIL": "sd-tutorial@localhost",
    "GIT_COMMITTER_NAME": "sd-tutorial",
    "GIT_COMMITTER_EMAIL": "sd-tutorial@localhost",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class RepoSpec:
    """How a stand-in repository is published."""

    kind: str  # which tiny pipeline (helpers.standins.tiny.KINDS), or "lora": the tiny LoRA in Kohya's format
    fp16: bool  # *.fp16.safetensors beside every fp32 weight
    safetensors: bool  # False: pickle weights only
    unet_bin: bool  # also a pickle unet/diffusion_pytorch_model.bin, as openjourney has
    about: str


REPOS: dict[str, RepoSpec] = {
    SD15_ID: RepoSpec("base", fp16=True, safetensors=True, unet_bin=False, about="as SD1.5 is published"),
    OPENJOURNEY_ID: RepoSpec(
        "finetuned", fp16=False, safetensors=True, unet_bin=True, about="as openjourney is: no fp16, a UNet .bin"
    ),
    OPENJOURNEY_LORA_ID: RepoSpec(
        "lora", fp16=False, safetensors=True, unet_bin=False, about="as openjourney-lora is: one Kohya-format file"
    ),
    PICKLE_ONLY_ID: RepoSpec("base", fp16=False, safetensors=False, unet_bin=False, about="pickle weights only"),
}


class HubError(RuntimeError):
    """The local Hub could not start (olah missing, the port taken, or no answer in time)."""


def tiny_safety_checker(seed: int):
    """A safety checker with the real structure (CLIP vision tower, 224 px, patch 14) at toy width."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    config = CLIPConfig(
        projection_dim=32,
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2},
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "image_size": 224,
            "patch_size": 14,
            "projection_dim": 32,
        },
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return StableDiffusionSafetyChecker(config)


def build_hub_pipeline(kind: str):
    """The tiny pipeline ``kind`` with everything the Hub repository has: safety checker, feature extractor, and the
    scheduler the real repository publishes (SD1.5's and openjourney's: PNDMScheduler, where the tiny model's own
    folder names Euler)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    from helpers.standins.replica import SCHEDULER_CONFIG, replica_feature_extractor

    tiny = StableDiffusionPipeline.from_pretrained(tiny_model_path(kind), dtype=torch.float32)
    parts = {name: getattr(tiny, name) for name in ("vae", "text_encoder", "tokenizer", "unet")}
    return StableDiffusionPipeline(
        **parts,
        scheduler=PNDMScheduler.from_config(SCHEDULER_CONFIG),
        safety_checker=tiny_safety_checker(seed=sorted(KINDS).index(kind)),
        feature_extractor=replica_feature_extractor(),
        requires_safety_checker=True,
    )


def kohya_lora(folder: Path, weight_name: str) -> dict[str, torch.Tensor]:
    """The diffusers-format LoRA ``folder/weight_name`` in Kohya's format, as AUTOMATIC1111 and civitai share LoRAs.

    diffusers' own converter writes the keys (``lora_unet_<layer>.lora_down.weight``, ``.lora_up.weight``) and an
    ``.alpha`` per layer equal to its rank (the tiny LoRA was trained with alpha = rank, so the scale stays 1);
    Kohya's trainer stores alpha in the weights' dtype, and so does this.
    """
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file

    state = convert_state_dict_to_kohya(load_file(str(folder / weight_name)))
    dtype = next(v.dtype for k, v in state.items() if not k.endswith(".alpha"))
    return {k: v.to(dtype) if k.endswith(".alpha") else v for k, v in state.items()}


def write_lora(folder: Path) -> None:
    """The openjourney-lora stand-in: the tiny LoRA, in Kohya's format, under openjourney-lora's file name."""
    from safetensors.torch import save_file

    from helpers.lora import DIFFUSERS_LORA_FILE, OPENJOURNEY_LORA_FILE
    from helpers.standins.tiny import tiny_lora_path

    state = kohya_lora(tiny_lora_path(), DIFFUSERS_LORA_FILE)
    save_file(state, str(folder / OPENJOURNEY_LORA_FILE), metadata={"format": "pt"})


def _git(folder: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def write_repo(folder: Path, repo_id: str, spec: RepoSpec) -> str:
    """Write the repository ``repo_id`` into ``folder`` as a git repository on ``main``; return its HEAD sha."""
    folder.mkdir(parents=True, exist_ok=True)
    if spec.kind == "lora":
        write_lora(folder)
        what = "LoRA of the mdjrny-v4 style (tiny-mdjrny-lora)"
    else:
        pipe = build_hub_pipeline(spec.kind)
        if spec.fp16:  # the variant first: the fp32 save then leaves configs that say float32, as on the Hub
            pipe.to(torch.float16).save_pretrained(folder, safe_serialization=True, variant="fp16")
            pipe.to(torch.float32)
        pipe.save_pretrained(folder, safe_serialization=spec.safetensors)
        if spec.unet_bin:
            pipe.unet.save_pretrained(folder / "unet", safe_serialization=False)
        what = f"model ({KINDS[spec.kind]['folder']})"
    (folder / "README.md").write_text(
        f"# {repo_id} (stand-in)\n\nThe project's tiny trained {what} published {spec.about}, for tests against a "
        "local Hub.\n"
    )
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", "-A")
    _git(folder, "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", f"{repo_id} stand-in")
    return _git(folder, "rev-parse", "HEAD")


def models_digest() -> str:
    """12 hex digits that change whenever the shipped tiny models' weights or configs do (``make train-tiny``)."""
    digest = hashlib.sha256()
    root = models_root()
    for path in sorted(p for p in root.rglob("*") if p.suffix in {".safetensors", ".json", ".txt"}):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def hub_repos_path(root: Path | None = None) -> Path:
    """Build the stand-in repositories once into the cache; return the mirrors folder (``models/<org>/<name>``).

    The folder is named for :data:`BUILD_VERSION` and :func:`models_digest`, so that retrained tiny models are
    published afresh rather than served from an older build.
    """
    target = (root or cache_root()) / f"hub-{BUILD_VERSION}-{models_digest()}"

    def write(folder: Path) -> None:
        for repo_id, spec in REPOS.items():
            write_repo(folder / "models" / repo_id, repo_id, spec)

    return build_once(target, write, marker=f"models/{PICKLE_ONLY_ID}/.git/HEAD")


def head_sha(repo: Path) -> str:
    """The commit ``main`` points at in a stand-in repository."""
    return _git(repo, "rev-parse", "main")


def olah_python() -> Path:
    """The Python that has olah: ``$SD_OLAH_PYTHON``, else ``.venv-hub/bin/python`` (made by ``make hub-setup``)."""
    python = Path(os.environ.get(OLAH_PYTHON_ENV_VAR) or HUB_VENV / "bin" / "python")
    if not python.exists():
        raise HubError(
            f"olah's Python {python} does not exist. Run `make hub-setup` (a virtual environment .venv-hub with "
            f"olah=={OLAH_VERSION}), or set {OLAH_PYTHON_ENV_VAR} to a Python that has it."
        )
    return python


def olah_config(
    *, host: str, port: int, repos_path: Path, mirrors: Path | None, offline: bool, netloc: str | None = None
) -> str:
    """olah's TOML config: offline with local mirrors, or (``offline=False``, no mirrors) a caching proxy of the Hub."""
    netloc = netloc or f"{host}:{port}"
    lines = [
        "[basic]",
        f"host = {json.dumps(host)}",
        f"port = {port}",
        f"repos-path = {json.dumps(str(repos_path))}",
        'mirror-scheme = "http"',
        f"mirror-netloc = {json.dumps(netloc)}",
        f"mirror-lfs-netloc = {json.dumps(netloc)}",
        f"mirrors-path = {json.dumps([str(mirrors)] if mirrors else [])}",
        "",
        "[accessibility]",
        # Without it, olah asks huggingface.co first on every request and, without internet, times out.
        f"offline = {'true' if offline else 'false'}",
        "",
    ]
    return "\n".join(lines)


def write_meta_heads(repos_path: Path, mirrors: Path) -> dict[str, str]:
    """Work around olah's offline quirk: record each mirrored repository's HEAD where olah looks for it.

    Returns ``{repo_id: sha}``.
    """
    heads = {}
    for git_dir in sorted((mirrors / "models").glob("*/*/.git")):
        repo_id = f"{git_dir.parent.parent.name}/{git_dir.parent.name}"
        heads[repo_id] = head_sha(git_dir.parent)
        meta = repos_path / "api" / "models" / repo_id / "revision" / "main" / "meta_head.json"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"sha": heads[repo_id], "lastModified": LAST_MODIFIED}))
    return heads


class LocalHub:
    """olah serving the stand-in repositories on ``host:port``; a context manager.

    Args:
        port: the port; None picks a free one.
        mirrors: the folder of git repositories (``models/<org>/<name>``); None builds :data:`REPOS` once
            into the cache. Ignored when ``offline=False``.
        workdir: where olah keeps its config, log and cache; None: a temporary folder removed on :meth:`stop`.
        offline: True (the default) serves only the mirrors; False makes olah a caching proxy of huggingface.co
            (a classroom mirror; needs internet).
        fix_meta_heads: write the ``meta_head.json`` files of the offline quirk (tests turn it off to check that
            the quirk still exists).
        host, netloc: where olah listens, and the ``host:port`` clients reach it by (default ``host:port``).
        timeout: seconds to wait for the server to answer before giving up.

    Example:
        >>> with LocalHub() as hub:                      # doctest: +SKIP
        ...     env = {"HF_ENDPOINT": hub.endpoint}
    """

    def __init__(
        self,
        port: int | None = None,
        mirrors: Path | None = None,
        workdir: Path | None = None,
        *,
        offline: bool = True,
        fix_meta_heads: bool = True,
        host: str = HOST,
        netloc: str | None = None,
        timeout: float = 30.0,
    ):
        self.host = host
        self.port = port or free_port(host)
        self.offline = offline
        self.mirrors = (mirrors or hub_repos_path()) if offline else None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sd-local-hub-"))
        self.netloc = netloc or f"{host}:{self.port}"
        self.fix_meta_heads = fix_meta_heads
        self.timeout = timeout
        self.heads: dict[str, str] = {}
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        """What clients set ``HF_ENDPOINT`` to, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.netloc}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "olah.log"

    def start(self) -> LocalHub:
        """Write the config (and the quirk's files), start olah, and wait until it answers."""
        if self.process and self.process.poll() is None:
            return self
        repos_path = self.workdir / "repos"
        repos_path.mkdir(parents=True, exist_ok=True)
        if self.offline:
            heads = write_meta_heads(repos_path, self.mirrors) if self.fix_meta_heads else {}
            self.heads = heads or {repo_id: head_sha(self.mirrors / "models" / repo_id) for repo_id in REPOS}
        config = self.workdir / "olah.toml"
        config.write_text(
            olah_config(
                host=self.host,
                port=self.port,
                repos_path=repos_path,
                mirrors=self.mirrors,
                offline=self.offline,
                netloc=self.netloc,
            )
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(olah_python()), "-m", "olah.server", "-c", str(config)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: a Ctrl-C in `make hub` reaches it once, via us
            )
        self._wait_ready()
        return self

    def _probe_url(self) -> str:
        # /api/whoami-v2 is proxied to the Hub even offline; a mirrored repository's revision answers locally.
        # Online, any answer of olah's own start page will do.
        host = HOST if self.host == "0.0.0.0" else self.host
        path = f"/api/models/{next(iter(self.heads), SD15_ID)}/revision/main" if self.offline else "/"
        return f"http://{host}:{self.port}{path}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        url = self._probe_url()
        while True:
            if self.process.poll() is not None:
                raise HubError(f"olah exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:  # not listening yet (HTTPError: listening, repositories not ready)
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HubError(f"olah did not answer {url} within {self.timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines olah printed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """Kill olah at once (SIGKILL), as a crash would; its files stay for a restart with :meth:`start`."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop olah by its PID (SIGTERM, then SIGKILL after 10 s) and remove a temporary workdir."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
