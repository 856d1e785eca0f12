"""Profiles: one notebook, several machines.

A profile fixes everything that depends on the machine: which model, which device and dtype, image size,
number of steps and batch sizes. Notebooks ask for ``profile = "auto"``; the ``SD_PROFILE`` environment
variable overrides ``auto`` (that is how tests pick ``tiny``), and an explicit name overrides both.

Example:
    >>> from helpers import activate_profile
    >>> prof = activate_profile("tiny")
    >>> prof.device, prof.height
    ('cpu', 64)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace

import torch

BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
FINETUNED_MODEL = "prompthero/openjourney"
DEFAULT_PROMPT = "portrait photo of a old warrior chief"

ENV_VAR = "SD_PROFILE"
AUTO = "auto"


@dataclass(frozen=True)
class Profile:
    """Everything a notebook needs to know about the machine it runs on."""

    name: str
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype
    base_model: str  # Hub id, local folder, or "tiny:<kind>" / "replica:<kind>" for the project's own stand-ins
    finetuned_model: str
    height: int
    width: int
    num_inference_steps: int  # with the model's default scheduler (SD1.5: PNDM; the tiny model: Euler)
    fast_steps: int  # with DPMSolverMultistepScheduler, which needs fewer steps
    batch_sizes: tuple[int, ...]  # the small and the large batch the notebooks use
    real_weights: bool  # False: a stand-in (the tiny model trained here, or the random-weight replica)
    description: str

    @property
    def batch_size(self) -> int:
        """The small batch size (8 on a GPU, as in the original tutorial)."""
        return self.batch_sizes[0]

    @property
    def large_batch_size(self) -> int:
        """The large batch size (16 on a GPU)."""
        return self.batch_sizes[-1]


# The real model on an NVIDIA GPU; every other profile says how it differs from this one.
GPU = Profile(
    name="gpu",
    device="cuda",
    dtype=torch.float16,
    base_model=BASE_MODEL,
    finetuned_model=FINETUNED_MODEL,
    height=512,
    width=512,
    num_inference_steps=50,
    fast_steps=20,
    batch_sizes=(8, 16),
    real_weights=True,
    description="NVIDIA GPU: the real model in half precision",
)

# fp16 produced black images and crashes on M1 (diffusers issue #4480): fp32 is the safe choice.
MPS = replace(
    GPU, name="mps", device="mps", dtype=torch.float32, batch_sizes=(2, 4),
    description="Apple GPU: the real model in full precision, smaller batches",
)  # fmt: skip
CPU = replace(
    GPU, name="cpu", device="cpu", dtype=torch.float32, num_inference_steps=20, fast_steps=10, batch_sizes=(2, 4),
    description="CPU: the real model in full precision; slow (minutes per image) but real",
)  # fmt: skip
TINY = replace(
    GPU, name="tiny", device="cpu", dtype=torch.float32, base_model="tiny:base", finetuned_model="tiny:finetuned",
    height=64, width=64, num_inference_steps=10, fast_steps=5, real_weights=False,
    description="tiny model trained here on a toy world, on CPU: runs anywhere in seconds, pictures of that world",
)  # fmt: skip
# SD1.5's exact architecture with random weights (helpers.standins.replica), for GPU machines without the Hub:
# everything of the gpu profile, pictures excepted. Without CUDA, resolve_profile gives REPLICA_CPU instead.
REPLICA = replace(
    GPU, name="replica", base_model="replica:base", finetuned_model="replica:finetuned", real_weights=False,
    description="SD1.5 replica (real architecture, random weights) on the GPU, as gpu; pictures are noise",
)  # fmt: skip

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (GPU, MPS, CPU, TINY, REPLICA)}

# The replica profile on a machine without CUDA: the real architecture at 64 px, one step, the cpu profile's batches.
REPLICA_CPU = replace(
    REPLICA,
    device="cpu",
    dtype=torch.float32,
    height=64,
    width=64,
    # One step: every scheduler of notebook 03 runs with it, and the safety checker, VAE and text encoder, which
    # run once per picture whatever the steps, already take 70% of a 2-step picture (7.5 CPU-s each here). For the
    # same reason the batches are the cpu profile's 2 and 4: the cost is per picture, and a batch of 4 goes through
    # every batched code path that one of 16 does (the goldens check nothing that depends on the batch size).
    num_inference_steps=1,
    fast_steps=1,
    batch_sizes=CPU.batch_sizes,
    description="SD1.5 replica (real architecture, random weights) on the CPU, 64 px, 1 step, batches of 2 and 4; "
    "pictures are noise",
)

_active: Profile | None = None
_banner_shown = False

TINY_BANNER = """\
================================================================================
 No GPU found: running the TINY MODEL (profile "tiny"), trained on a CPU on a
 toy world of coloured shapes: its 64 x 64 pictures show that world, not art.
 Everything else (the code, the seeds, the grids, the timings) is real.
 To get real images: in Colab choose Runtime > Change runtime type > GPU;
 on your own machine run with a CUDA GPU, or set SD_PROFILE=cpu (slow).
================================================================================"""


REPLICA_BANNER = """\
================================================================================
 Profile "replica": Stable Diffusion 1.5's exact architecture with RANDOM weights.
 Its sizes, memory and speed are the real model's; every picture is noise.
================================================================================"""


def standin_banner(profile: Profile) -> str | None:
    """What a run must say first when a stand-in makes its pictures (tiny or replica profile); None for real weights."""
    if profile.real_weights:
        return None
    return REPLICA_BANNER if profile.name == "replica" else TINY_BANNER


def available_profiles() -> list[str]:
    """Names accepted by :func:`resolve_profile`, ``auto`` first."""
    return [AUTO, *PROFILES]


def detect_device() -> str:
    """The best accelerator present: ``"cuda"``, then ``"mps"``, else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _auto_name() -> str:
    return {"cuda": "gpu", "mps": "mps"}.get(detect_device(), "tiny")


def _show_tiny_banner() -> None:
    global _banner_shown
    if not _banner_shown:
        print(TINY_BANNER, file=sys.stdout, flush=True)
        _banner_shown = True


def resolve_profile(profile: str | Profile | None = None, **overrides) -> Profile:
    """Turn a profile name into a :class:`Profile`.

    Args:
        profile: ``"auto"``, ``"gpu"``, ``"mps"``, ``"cpu"``, ``"tiny"``, ``"replica"``, a Profile, or None. None and
            ``"auto"`` defer to the ``SD_PROFILE`` environment variable, then to the hardware.
        **overrides: fields to change, e.g. ``height=256``.

    Example:
        >>> resolve_profile("tiny", num_inference_steps=2).num_inference_steps
        2
    """
    if isinstance(profile, Profile):
        prof = profile
    else:
        name = AUTO if profile is None else str(profile).strip().lower()
        from_env = False
        if name == AUTO:
            env = os.environ.get(ENV_VAR, "").strip().lower()
            if env and env != AUTO:
                name, from_env = env, True
        if name == AUTO:
            name = _auto_name()
            if name == "tiny":
                _show_tiny_banner()
        if name not in PROFILES:
            source = f"{ENV_VAR}={os.environ.get(ENV_VAR)!r}" if from_env else f"profile={profile!r}"
            raise ValueError(
                f"Unknown profile: {source}. Use one of {available_profiles()}, "
                f'e.g. activate_profile("auto") to pick the best for this machine.'
            )
        prof = PROFILES[name]
        if name == "replica" and detect_device() != "cuda":
            prof = REPLICA_CPU
    if overrides:
        unknown = sorted(set(overrides) - set(Profile.__dataclass_fields__))
        if unknown:
            raise TypeError(
                f"Unknown profile field(s) {unknown}; valid fields are {sorted(Profile.__dataclass_fields__)}"
            )
        prof = replace(prof, **overrides)
    return prof


def activate_profile(profile: str | Profile | None = None, **overrides) -> Profile:
    """Resolve a profile and make it the one that helpers use for their defaults.

    Example:
        >>> activate_profile("tiny").name
        'tiny'
    """
    global _active
    _active = resolve_profile(profile, **overrides)
    return _active


def current_profile() -> Profile:
    """The active profile; if none was activated yet, activate ``auto`` (which honours ``SD_PROFILE``)."""
    return _active if _active is not None else activate_profile(None)


def reset_profile() -> None:
    """Forget the active profile (tests use this)."""
    global _active
    _active = None


def describe_device(device: str | None = None) -> str:
    """A one-line, human description of a device, e.g. ``"cuda: NVIDIA H100 80GB HBM3 (79.1 GiB)"``."""
    device = device or detect_device()
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"cuda: {props.name} ({props.total_memory / 2**30:.1f} GiB)"
    if device == "mps":
        return "mps: Apple GPU"
    return f"cpu: {os.cpu_count()} cores"


def check_gpu() -> str:
    """Print and return a friendly message about the accelerator, telling the learner what to do if there is none."""
    device = detect_device()
    if device == "cuda":
        message = f"GPU found: {describe_device('cuda')}. The real model will run in half precision."
    elif device == "mps":
        message = "Apple GPU found (mps). The real model will run in full precision (fp16 is unreliable on M1)."
    else:
        message = (
            "No GPU found. In Colab: Runtime > Change runtime type > T4 GPU, then run the notebook again. "
            'Without a GPU, profile "auto" runs the tiny model (small pictures of a toy world).'
        )
    print(message)
    return message
