"""Measure each row: settings applied, warm-up and timed calls, FLOPs counted, and the reason for every row that
did not run. No row is ever dropped: a row is ``ok``, ``skipped`` (with why) or ``failed`` (with the error).

``torch.compile`` is bounded: a row that compiles must finish within ``compile_timeout`` seconds, or it is
stopped and reported as skipped with the bound it exceeded (on a 2-core CPU one compilation of the tiny UNet took
minutes).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from helpers.flops import pipeline_flops, tflops_per_second
from helpers.schedulers import set_scheduler
from helpers.speed import speed_settings, why_unavailable
from helpers.timing import time_pipeline

from .cases import Case

QUICK_REASON = "not in QUICK=1's subset; run without QUICK to measure it"
QUICK_COMPILE_REASON = (
    "QUICK=1 leaves torch.compile out: compiling the UNet takes minutes on a CPU; run without QUICK to measure it "
    "(its compile time is reported apart)"
)


class CompileTimeout(BaseException):
    """Raised inside a compiling row that ran past its time limit (a BaseException, so compilers don't catch it)."""


# After the limit, the alarm repeats at this interval until the block has stopped: Python runs a signal handler
# wherever the main thread is, and an exception raised inside a garbage-collector callback or a ``__del__`` is
# printed as "ignored" and lost (hypothesis's gc callback swallowed one, and a 0.1 s bound let a compile run 72 s).
REPEAT_SECONDS = 0.2


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CompileTimeout` in the block after ``seconds`` (POSIX main thread only; else no limit).

    The interrupt repeats every :data:`REPEAT_SECONDS` until it gets through, and a block that swallowed every one
    of them and finished late still ends in :class:`CompileTimeout`.

    Example:
        >>> with time_limit(600):
        ...     pass
    """
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    message = f"did not finish within {seconds:g} s"
    fired = False

    def stop(signum, frame):
        nonlocal fired
        fired = True
        raise CompileTimeout(message)

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:  # the block ran past the limit but every interrupt was swallowed on the way
        raise CompileTimeout(message)


@dataclass
class Options:
    """How to run the rows (from the command line)."""

    height: int
    width: int
    reps: int = 3
    warmup: int = 1
    quick: bool = False
    compile: bool = True
    compile_timeout: float | None = 600.0
    groups: Sequence[str] | None = None
    peak_tflops: float | None = None
    prompt: str = "portrait photo of a old warrior chief"
    seed: int = 0


def skip_reason(pipe, case: Case, options: Options) -> str | None:
    """Why ``case`` does not run this time, or None when it runs."""
    if options.groups and case.group not in options.groups:
        return f"group {case.group!r} not selected (--groups {' '.join(options.groups)})"
    if options.quick and not case.quick:
        return QUICK_COMPILE_REASON if case.compiles else QUICK_REASON
    if case.compiles and not options.compile:
        return "torch.compile left out (--no-compile)"
    return why_unavailable(pipe, case.settings)


def warmup_calls(case: Case, options: Options) -> int:
    """Warm-up calls for a row: two at least when it compiles, so that the compile time shows apart."""
    return max(options.warmup, 2) if case.compiles else options.warmup


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def measure_case(pipe, case: Case, options: Options, on_call: Callable[[], None] | None = None) -> dict:
    """Run one row and return it as a dict (status ``ok``, ``skipped`` or ``failed``)."""
    row = {
        "label": case.label,
        "group": case.group,
        "settings": list(case.settings),
        "precision": case.precision(pipe.dtype),
        "scheduler": case.scheduler,
        "steps": case.steps,
        "steps_label": case.steps_label,
        "batch_size": case.batch_size,
    }
    reason = skip_reason(pipe, case, options)
    if reason:
        return {**row, "status": "skipped", "reason": reason}
    original = pipe.scheduler
    try:
        set_scheduler(pipe, case.scheduler)
        with speed_settings(pipe, case.settings), time_limit(options.compile_timeout if case.compiles else None):
            timing = time_pipeline(
                pipe,
                case.label,
                reps=options.reps,
                warmup=warmup_calls(case, options),
                on_call=on_call,
                batch_size=case.batch_size,
                num_inference_steps=case.steps,
                height=options.height,
                width=options.width,
                prompt=options.prompt,
                seed=options.seed,
            )
            flops = pipeline_flops(pipe, case.batch_size, options.height, options.width, guided=timing.guided)
    except CompileTimeout as err:
        return {**row, "status": "skipped", "reason": f"torch.compile {err} (--compile-timeout)"}
    except Exception as err:  # a row that fails (out of memory, say) is reported, and the others still run
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return {**row, "status": "failed", "reason": _first_line(err)}
    finally:
        pipe.scheduler = original
    return {**row, "status": "ok", **timing.as_dict(), **flop_figures(timing, flops, case, options)}


def flop_figures(timing, flops: dict[str, int], case: Case, options: Options) -> dict:
    """The row's FLOPs and what it achieved: UNet TFLOP/s from the loop's it/s, and over the whole call."""
    unet_step = flops["unet_step"]
    per_call = timing.unet_calls * unet_step + flops["vae_decode"]
    unet_rate = unet_step * timing.median_iterations_per_second / 1e12
    figures = {
        "unet_step_tflop": unet_step / 1e12,
        "vae_decode_tflop": flops["vae_decode"] / 1e12,
        "tflop_per_call": per_call / 1e12,
        "unet_tflops_per_second": unet_rate,
        "tflops_per_second": tflops_per_second(per_call, timing.median_seconds),
        "peak_share_percent": None,
        "compile_seconds": timing.first_call_extra_seconds if case.compiles else None,
    }
    if options.peak_tflops and unet_rate == unet_rate:  # not NaN
        figures["peak_share_percent"] = 100 * unet_rate / options.peak_tflops
    return figures


def run_cases(pipe, cases: Sequence[Case], options: Options, progress=None) -> list[dict]:
    """Every row in order; ``progress`` (a tqdm bar, or None) advances once per pipeline call."""
    rows = []
    for case in cases:
        if progress is not None:
            progress.set_postfix_str(case.label, refresh=True)
        rows.append(measure_case(pipe, case, options, on_call=(lambda: progress.update(1)) if progress else None))
    return rows


def planned_calls(pipe, cases: Sequence[Case], options: Options) -> int:
    """How many pipeline calls the rows that will run make (for the progress bar)."""
    return sum(warmup_calls(c, options) + options.reps for c in cases if not skip_reason(pipe, c, options))
