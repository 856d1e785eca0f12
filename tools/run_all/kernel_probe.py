"""Run inside a notebook's kernel by run-all: on exit, write the kernel's peak memory to ``$SD_RUN_PEAK_FILE``.

It records the kernel process's peak resident memory (its own high-water mark, not sampled) and, when the notebook
used CUDA, the peak GPU memory PyTorch allocated: ``torch.cuda.max_memory_allocated``, the figure ``helpers.measure``
reports too, kept across the resets that ``measure`` does (``helpers.measure.cuda_peak_bytes``). It imports nothing
heavy, and reads torch only if the notebook imported it. run-all loads this file with ``runpy`` at kernel start,
so it adds no name to the notebook's namespace.
"""

import atexit
import json
import os
import resource
import sys

ENV_VAR = "SD_RUN_PEAK_FILE"


def peak_rss() -> int:
    """The kernel's peak resident memory in bytes.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, which starts afresh at ``exec``. ``getrusage``'s
    ``ru_maxrss`` would not do there: it keeps the launching process's size, so every kernel started by a runner
    holding 400 MB would report at least 400 MB. Elsewhere (macOS) ``ru_maxrss`` is the best there is.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # given in kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB elsewhere


def peaks() -> dict:
    """The kernel's peak RSS in bytes, and its peak CUDA allocation if it used CUDA."""
    result = {"rss_peak_bytes": peak_rss()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        measure = sys.modules.get("helpers.measure")  # it resets PyTorch's peak counter, and remembers the peak
        peak = measure.cuda_peak_bytes() if measure is not None else torch.cuda.max_memory_allocated()
        result["cuda_peak_bytes"] = peak
        result["cuda_device"] = torch.cuda.get_device_name(torch.cuda.current_device())
    return result


def _write() -> None:
    path = os.environ.get(ENV_VAR)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(peaks(), f)


if __name__ == "sd_tutorial_kernel_probe":  # loaded by run-all through runpy.run_path
    atexit.register(_write)
