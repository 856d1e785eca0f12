"""The simulated Colab machine image: a Python 3.13 virtual environment with Colab's published versions.

It is built once per ``colab-runtime.txt`` (and Python) into the cache, ``$SD_TUTORIAL_CACHE/colab`` or
``~/.cache/sd-tutorial/colab``, from wheels kept in ``colab/wheels`` (this machine's pip does not cache PyPI's
downloads), and every simulated session starts from a hard-linked copy of it, as every Colab session starts
from the same image. Beside the packages it holds what makes it Colab for the notebooks: a ``google.colab``
module (the setup cell asks ``"google.colab" in sys.modules``) and a home with matplotlib's font cache.

Example:
    >>> base = base_image(read_runtime(), find_python("3.13"))  # doctest: +SKIP
    >>> session = fresh_copy(base, Path("/tmp/colab-01"))  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .runtime import Runtime

# Bump when what build() puts into an image changes, so that cached images are rebuilt.
IMAGE_FORMAT = "1"
GOOGLE_COLAB_STUB = '''"""Stand-in for Colab's google.colab package (make test-colab).

Colab's kernel imports google.colab at start; the notebooks' setup cell asks `"google.colab" in sys.modules`.
"""
'''
# What a warm-up imports once in the image, so that sessions find the bytecode compiled (Colab's image has it).
WARM_UP = "import torch, transformers, diffusers, accelerate, scipy.stats, matplotlib.pyplot, PIL.Image, tqdm.auto"
WARM_UP += ", ipykernel.kernelapp, ipywidgets, IPython"


def cache_root() -> Path:
    """The project's cache (the tiny models' too): ``$SD_TUTORIAL_CACHE``, else ``~/.cache/sd-tutorial``."""
    return Path(os.environ.get("SD_TUTORIAL_CACHE") or Path.home() / ".cache" / "sd-tutorial").expanduser()


def find_python(want: str) -> Path:
    """A Python ``want`` (``"3.13"``): ``$COLAB_SIM_PYTHON``, ``python3.13`` on PATH, or one that pyenv installed."""
    candidates = [os.environ.get("COLAB_SIM_PYTHON"), shutil.which(f"python{want}")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{want}.*/bin/python{want}"), reverse=True)
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        try:
            done = subprocess.run(probe, capture_output=True, text=True)
        except OSError:  # not there, or not a program
            continue
        if done.returncode == 0 and done.stdout.strip() == want:
            return Path(candidate)
    raise SystemExit(
        f"make test-colab needs Python {want}, Colab's, and found none: install it (pyenv install {want}, "
        f"or your system's python{want} package) or set COLAB_SIM_PYTHON=/path/to/python{want}"
    )


def pip_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """This machine's environment without its pip settings (local indexes, constraints): pip as in Colab.

    Only the certificate bundle and the timeout stay: they say how to reach PyPI from here, not what to install.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("PIP_")}
    env.update({k: v for k, v in os.environ.items() if k in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")})
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore")
    env.pop("VIRTUAL_ENV", None)
    return env


def image_key(runtime: Runtime, python: Path) -> str:
    """Names one image: the pins, the Python it runs on and the image format."""
    exact = subprocess.run([str(python), "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    text = "\n".join([*runtime.requirements(), exact.stdout.strip(), IMAGE_FORMAT])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3.*/site-packages")
    return found


def base_image(runtime: Runtime, python: Path, log=print) -> Path:
    """The cached image for ``runtime`` (built when missing): ``venv/``, ``home/``, and ``READY``."""
    root = cache_root() / "colab"
    image = root / f"image-{image_key(runtime, python)}"
    if (image / "READY").exists():
        return image
    building = root / f"building-{image.name}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    start = time.perf_counter()
    log(f"Building the Colab image {image.name} (Python {runtime.python[:4]}, {len(runtime.pins)} pins) ...")
    build(runtime, python, building, root / "wheels", log)
    (building / "READY").write_text(f"built in {time.perf_counter() - start:.0f} s\n", encoding="utf-8")
    try:
        building.rename(image)
    except OSError:  # another build finished first: use it
        shutil.rmtree(building, ignore_errors=True)
    for stale in root.glob("image-*"):
        if stale != image:
            shutil.rmtree(stale, ignore_errors=True)
    log(f"Built the Colab image in {time.perf_counter() - start:.0f} s: {image}")
    return image


def build(runtime: Runtime, python: Path, folder: Path, wheels: Path, log=print) -> None:
    """Create the venv, fetch the wheels (kept for the next build), install them, add Colab's pieces, warm up."""
    env = pip_environment()
    venv, home = folder / "venv", folder / "home"
    home.mkdir(parents=True)
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    requirements = folder / "colab-requirements.txt"
    requirements.write_text("\n".join(runtime.requirements()) + "\n", encoding="utf-8")
    pip = [py, "-m", "pip", "-q"]
    step = time.perf_counter()
    subprocess.run([*pip, "download", "-d", str(wheels), "-r", str(requirements)], check=True, env=env)
    log(f"  wheels in {wheels}: {time.perf_counter() - step:.0f} s")
    offline = ["--no-index", "--find-links", str(wheels)]
    step = time.perf_counter()
    pip_pin = [line for line in runtime.requirements() if line.startswith("pip==")]
    subprocess.run([*pip, "install", *offline, *pip_pin], check=True, env=env)
    subprocess.run([*pip, "install", "--no-compile", *offline, "-r", str(requirements)], check=True, env=env)
    log(f"  installed: {time.perf_counter() - step:.0f} s")
    stub = site_packages(venv) / "google" / "colab" / "__init__.py"  # no google/__init__.py: a namespace package
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(GOOGLE_COLAB_STUB, encoding="utf-8")
    step = time.perf_counter()
    warm = {**env, "HOME": str(home), "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    subprocess.run([py, "-c", WARM_UP], check=True, env=warm, cwd=home)
    log(f"  warm-up imports (bytecode, font cache): {time.perf_counter() - step:.0f} s")


def fresh_copy(image: Path, dest: Path) -> Path:
    """A session's own copy of the image: hard links, so it takes a second and no space; pip replaces files
    rather than writing into them, so what a session installs never reaches the image."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if sys.platform.startswith("linux"):
        subprocess.run(["cp", "-al", str(image), str(dest)], check=True)
    else:  # pragma: no cover - CI and this machine are Linux
        shutil.copytree(image, dest, symlinks=True, copy_function=os.link)
    return dest
