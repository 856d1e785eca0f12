"""Open a run's gallery in a real browser (headless Chromium): take a screenshot, check that every image loaded.

It also reads the run's executed notebooks as a reader would (:mod:`tools.output_check`): charts and
pictures shown as pictures, progress bars finished, no package paths.

The gallery counts its own images once the page has loaded and writes the result on ``<body>``
(``data-images-total``, ``data-images-loaded``, ``data-images-broken``); Chromium's ``--dump-dom`` gives that DOM
back. Chromium is Debian's ``chromium`` package, installed with apt-get when missing (as root).

Usage:
    python -m tools.browser_check                 # a fresh tiny run-all (JOBS=2), then the check
    python -m tools.browser_check --run latest    # check an existing run
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tools import ROOT

from .output_check import output_problems
from .run_all.state import find_run

BROWSERS = ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser")  # the last: a snap shim on Ubuntu
# No network, no first-run work, no sandbox (root in a container): a quiet, offline browser.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def install_chromium() -> float:
    """``apt-get install -y chromium``; returns the seconds it took (update included)."""
    if os.geteuid() != 0:
        raise PermissionError("Chromium is missing and installing it needs root: sudo apt-get install -y chromium")
    start = time.perf_counter()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, env=env)
    return time.perf_counter() - start


def _chromium(browser: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return done.stdout


def check_gallery(index: Path, screenshot: Path, browser: str) -> dict:
    """Load ``index.html`` headless: how many images it has and loaded, which did not; save a screenshot."""
    url = index.resolve().as_uri()
    dom = _chromium(browser, "--virtual-time-budget=10000", "--dump-dom", url)
    body = re.search(r"<body([^>]*)>", dom)
    attrs = dict(re.findall(r'data-images-([a-z]+)="([^"]*)"', body.group(1) if body else ""))
    if "loaded" not in attrs:
        raise RuntimeError(f"{index}: the page's image check did not run (no data-images-loaded on <body>)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    _chromium(browser, "--window-size=1280,2400", f"--screenshot={screenshot}", url)
    return {
        "images": dom.count("<img "),
        "total": int(attrs["total"]),
        "loaded": int(attrs["loaded"]),
        "broken": attrs.get("broken", "").split(),
        "screenshot": screenshot,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.browser_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a run folder or 'latest' (default: make a fresh tiny run first)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    args = parser.parse_args(argv)

    browser = find_browser()
    if browser is None:
        print("Chromium is missing: installing Debian's chromium package ...", flush=True)
        print(f"installed in {install_chromium():.0f} s", flush=True)
        browser = find_browser()
    run_code = 0
    if args.run is None:
        from .run_all.cli import main as run_all

        run_code = run_all(["--profile", "tiny", "--jobs", "2", "--runs-dir", str(args.runs_dir)])
        args.run = "latest"
    folder = find_run(args.runs_dir, args.run)
    result = check_gallery(folder / "index.html", ROOT / "build" / "browser-check" / f"{folder.name}.png", browser)
    print(
        f"{browser}: {result['loaded']} of {result['total']} images loaded in {folder / 'index.html'}; "
        f"screenshot {result['screenshot']}"
    )
    expected = _images_in_summary(folder)
    problems = []
    if result["broken"] or result["loaded"] != result["total"]:
        problems.append(f"images that did not load: {result['broken']}")
    if result["total"] != expected:
        problems.append(f"the gallery shows {result['total']} images, the summary counts {expected}")
    if run_code:
        problems.append(f"the run itself exited with {run_code} (see its summary.md)")
    for executed in sorted((folder / "notebooks").glob("*.ipynb")):
        problems += [f"{executed.name}, {problem}" for problem in output_problems(nbformat.read(executed, 4))]
    for problem in problems:
        print(f"browser check: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _images_in_summary(folder: Path) -> int:
    import json

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return sum(row["images"] for row in summary["notebooks"])


if __name__ == "__main__":
    sys.exit(main())
