"""``make bench``: time one pipeline under many settings and write the results into a new run folder.

    python -m tools.bench --profile replica            # SD1.5's architecture, 512 px on a CUDA GPU
    python -m tools.bench --profile gpu --quick        # the real model (from the Hugging Face cache)
    python -m tools.bench --profile tiny --quick       # the tiny model on a CPU: under a minute

Every row is the same prompt and seed, with one thing changed against the ``baseline`` row: precision
(fp32, fp16, bf16), scheduler (PNDM against DPM-Solver++), batch size, attention (SDPA, slicing, the classic
processor), VAE slicing and tiling, model and sequential CPU offload, and the fast path (``torch.compile`` of the
UNet with channels_last and fused QKV projections, its compile time reported apart), plus a tiny autoencoder
(TAESD). Each row reports seconds per picture, denoising it/s, peak memory and achieved TFLOP/s (FLOPs counted by
PyTorch on the meta device) with their share of the GPU's peak. Rows that cannot run here are listed with the
reason. The folder ``runs/bench-<UTC time>-<profile>/`` is new every time: an earlier one is never touched.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from helpers.flops import peak_tflops
from helpers.hardware import compile_mode
from helpers.loading import ModelNotAvailableError, NoSafetensorsError, load_pipeline
from helpers.profiles import available_profiles, describe_device, resolve_profile
from tools import ROOT

from ..envinfo import cpu_name
from ..run_all.state import new_run_folder
from . import report
from .cases import GROUPS, plan
from .runner import Options, planned_calls, run_cases


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _multiple_of_8(text: str) -> int:
    value = _positive(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f"must be a multiple of 8, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default="auto", help=f"one of {available_profiles()} (default: auto)")
    parser.add_argument("--model", default=None, help="a Hub id or local folder instead of the profile's model")
    parser.add_argument("--quick", action="store_true", help="QUICK=1: a small subset of the rows, no compile")
    parser.add_argument("--reps", type=_positive, default=None, help="timed calls per row (default 3; 2 with --quick)")
    parser.add_argument("--warmup", type=_not_negative, default=1, help="one-step warm-up calls per row (default 1)")
    parser.add_argument("--height", type=_multiple_of_8, default=None, help="pixels (default: the profile's)")
    parser.add_argument("--width", type=_multiple_of_8, default=None, help="pixels (default: the profile's)")
    parser.add_argument("--steps", type=_positive, default=None, help="DPM-Solver++ steps (default: the profile's)")
    parser.add_argument("--pndm-steps", type=_positive, default=None, help="PNDM steps (default: the profile's)")
    parser.add_argument(
        "--batch-sizes", type=_positive, nargs="+", default=None, help="batch rows (default: 1 and the profile's)"
    )
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=None, help="run only these groups of rows")
    parser.add_argument("--no-compile", action="store_true", help="leave the torch.compile rows out (reported)")
    parser.add_argument(
        "--compile-timeout",
        type=float,
        default=600.0,
        help="seconds a compiling row may take before it is stopped and reported as skipped (default 600; 0: none)",
    )
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's peak TFLOP/s (default: from the GPU table)"
    )
    parser.add_argument(
        "--threads", type=_positive, default=None, help="PyTorch CPU threads (default: PyTorch's, one per core)"
    )
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs", help="where run folders go (default runs/)")
    return parser


def peak_of(device: str, given: float | None) -> dict:
    """The peak used for the "% of peak" column, and where it comes from."""
    if given:
        return {"tflops": given, "source": "--peak-tflops"}
    found = peak_tflops() if device == "cuda" else None
    if found:
        return {"tflops": found[1], "source": f"{found[0]}, dense fp16, from NVIDIA's datasheet"}
    return {"tflops": None, "source": None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = {k: v for k, v in (("height", args.height), ("width", args.width)) if v}
        prof = resolve_profile(args.profile, **overrides)
        cases = plan(prof, batch_sizes=tuple(args.batch_sizes or ()), steps=args.steps, pndm_steps=args.pndm_steps)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    options = Options(
        height=prof.height,
        width=prof.width,
        reps=args.reps or (2 if args.quick else 3),
        warmup=args.warmup,
        quick=args.quick,
        compile=not args.no_compile,
        compile_timeout=args.compile_timeout or None,
        groups=args.groups,
        peak_tflops=None,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"bench: {prof.name} profile, {describe_device(prof.device)}, {prof.height} x {prof.width}", file=sys.stderr)
    try:
        pipe = load_pipeline(args.model, profile=prof)
    except (ModelNotAvailableError, NoSafetensorsError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        if isinstance(err, ModelNotAvailableError):
            print(
                "Without the real weights, benchmark the same architecture: make bench PROFILE=replica", file=sys.stderr
            )
        return 1
    peak = peak_of(prof.device, args.peak_tflops)
    options.peak_tflops = peak["tflops"]

    from tqdm.auto import tqdm

    with tqdm(total=planned_calls(pipe, cases, options), desc="bench", unit="call", file=sys.stderr) as bar:
        rows = run_cases(pipe, cases, options, progress=bar)

    import diffusers
    import torch

    folder = new_run_folder(args.runs_dir, prof.name, prefix="bench-")
    meta = {
        "profile": prof.name,
        "model": args.model or prof.base_model,
        "real_weights": prof.real_weights,
        "device": describe_device(prof.device),
        "cpu": cpu_name(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "height": prof.height,
        "width": prof.width,
        "reps": options.reps,
        "warmup": options.warmup,
        "quick": options.quick,
        "compile_mode": compile_mode(prof.device),
        "cpu_threads": torch.get_num_threads(),
        "compile_timeout": options.compile_timeout,
        "peak": peak,
        "command": ["python", "-m", "tools.bench", *(sys.argv[1:] if argv is None else argv)],
    }
    paths = report.write(folder, rows, meta)
    print(report.table(rows))
    print(f"\n{sum(r['status'] == 'ok' for r in rows)} of {len(rows)} rows ran; the others, and why, in bench.md")
    print(f"wrote {', '.join(p.name for p in paths.values())} to {folder}")
    return 0 if not any(r["status"] == "failed" for r in rows) else 1
