"""`make hub`: serve a local Hugging Face Hub in the foreground until Ctrl-C.

By default it serves the project's stand-in repositories (tiny weights in the layout of
``stable-diffusion-v1-5/stable-diffusion-v1-5``, ``prompthero/openjourney`` and the LoRA
``prompthero/openjourney-lora``) offline on 127.0.0.1, so that ``make download``, the notebooks'
``from_pretrained`` and ``load_lora_weights`` calls and ``huggingface_hub`` run their real code against it. With
``--online`` it is a caching mirror of huggingface.co instead (a classroom: the instructor's machine downloads each
file once, forty learners fetch it from there).

Example:
    $ make hub                                           # prints: export HF_ENDPOINT=http://127.0.0.1:8090
    $ python -m tools.hub --online --host 0.0.0.0 --netloc 192.168.1.10:8090 --workdir ~/olah-cache
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tools.local_hub import HOST, REPOS, HubError, LocalHub


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090; 0: a free one)")
    parser.add_argument("--host", default=HOST, help=f"address to listen on (default {HOST}; 0.0.0.0: the network)")
    parser.add_argument(
        "--netloc", help="host:port that clients use to reach it, when not --host:--port (e.g. the LAN address)"
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="a caching mirror of huggingface.co instead of the stand-ins (needs internet on this machine)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where olah keeps its config, log and downloaded files (default: a temporary folder, removed at exit; "
        "give one with --online so that the files stay)",
    )
    args = parser.parse_args(argv)
    if args.port < 0 or args.port > 65535:
        parser.error(f"--port={args.port} is not a port; use 1-65535, or 0 for a free one")
    if args.host == "0.0.0.0" and not args.netloc:
        parser.error("--host 0.0.0.0 needs --netloc, the address learners reach it by, e.g. 192.168.1.10:8090")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    hub = LocalHub(
        port=args.port or None,
        workdir=args.workdir,
        offline=not args.online,
        host=args.host,
        netloc=args.netloc,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        hub.start()
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    what = "a caching mirror of huggingface.co" if args.online else "the stand-ins " + ", ".join(REPOS)
    print(f"local Hub (olah, PID {hub.pid}) serving {what}")
    print(f"in another shell:\n  export HF_ENDPOINT={hub.endpoint}\n  export HF_HUB_OFFLINE=0")
    print("then e.g. `make download`. Ctrl-C stops it.", flush=True)
    try:
        while not stop.wait(1):
            if hub.process.poll() is not None:
                print(f"error: olah exited with code {hub.process.returncode}:\n{hub.log_tail()}", file=sys.stderr)
                return 1
    finally:
        hub.stop()
    print("local Hub stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
