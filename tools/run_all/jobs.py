"""Running notebooks side by side: job slots, one GPU per job, and stopping cleanly on Ctrl-C or SIGTERM.

Each of ``jobs`` threads runs one notebook at a time in its own kernel (see :mod:`tools.run_all.notebook`). On a
machine with several GPUs each slot owns one GPU, given to its kernels as ``CUDA_VISIBLE_DEVICES``. On Ctrl-C or
SIGTERM the running kernels are stopped, their notebooks marked ``interrupted`` and the rest left ``pending``,
so that ``--resume`` runs only those.

Example:
    >>> gpu_slots(4, ["0", "1"])
    ['0', '1', '0', '1']
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from helpers.checks import check_count

from ..common import NotebookResult
from .notebook import stop_kernel

# Ctrl-C and kill: both stop the run cleanly, so that it can be resumed.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def gpu_slots(jobs: int, gpus: Sequence[str]) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` for each of ``jobs`` job slots.

    With several GPUs, slot ``i`` gets GPU ``i`` (round robin when there are more jobs than GPUs, so some GPUs take
    two jobs); with one GPU or none, the kernels' environment is left alone (None).

    Example:
        >>> gpu_slots(2, ["0", "1", "2"]), gpu_slots(2, ["0"])
        (['0', '1'], [None, None])
    """
    check_count("jobs", jobs)
    if len(gpus) < 2:
        return [None] * jobs
    return [gpus[i % len(gpus)] for i in range(jobs)]


def cpu_threads_env(jobs: int, cores: int | None, environ: dict[str, str]) -> dict[str, str]:
    """``OMP_NUM_THREADS`` for each kernel, so that ``jobs`` kernels share the cores instead of fighting for them.

    PyTorch starts one thread per core in every process; two kernels on two cores then run four spinning threads,
    and each waits for the others at every step (seen here: a 0.6 s picture took 20 s). With one job, or when the
    user set ``OMP_NUM_THREADS``, nothing changes.

    Example:
        >>> cpu_threads_env(2, 8, {}), cpu_threads_env(1, 8, {}), cpu_threads_env(4, 2, {})
        ({'OMP_NUM_THREADS': '4'}, {}, {'OMP_NUM_THREADS': '1'})
    """
    if jobs <= 1 or "OMP_NUM_THREADS" in environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (cores or 1) // jobs))}


def visible_gpus() -> list[str]:
    """The GPUs this process may use: the entries of ``CUDA_VISIBLE_DEVICES`` if set, else every CUDA device."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [gpu.strip() for gpu in env.split(",") if gpu.strip() and gpu.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class JobRunner:
    """Runs notebooks on ``len(slots)`` threads, stopping every kernel when asked to."""

    def __init__(self, slots: Sequence[str | None]):
        self._free: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        for slot in slots:
            self._free.put(slot)
        self.jobs = len(slots)
        self.stopping = threading.Event()
        self._kernels: dict[str, int] = {}
        self._lock = threading.Lock()

    def kernel_started(self, name: str, pid: int) -> None:
        with self._lock:
            self._kernels[name] = pid
        if self.stopping.is_set():  # started while we were stopping: stop it too
            stop_kernel(pid)

    def stop(self) -> None:
        """Stop all kernels; notebooks that have not started will not start."""
        self.stopping.set()
        with self._lock:
            pids = list(self._kernels.values())
        for pid in pids:
            stop_kernel(pid)

    def _job(self, name: str, run: Callable[[str, dict[str, str]], NotebookResult]) -> NotebookResult | None:
        if self.stopping.is_set():
            return None
        slot = self._free.get()
        try:
            if self.stopping.is_set():
                return None
            return run(name, {} if slot is None else {"CUDA_VISIBLE_DEVICES": slot})
        finally:
            with self._lock:
                self._kernels.pop(name, None)
            self._free.put(slot)

    def run_all(self, names: Sequence[str], run: Callable[[str, dict[str, str]], NotebookResult]) -> int | None:
        """Call ``run(name, extra_env)`` for every name, ``jobs`` at a time.

        Returns None when all ran, or the signal number that stopped the run (SIGINT for Ctrl-C, SIGTERM).
        ``run`` must record its own results; it is not called for names left when the run stops.

        The signal handlers only note the signal; this loop sees it within 0.2 s and stops the kernels. (An
        exception raised from a handler could land while a lock of ``concurrent.futures`` is held, and hang.)
        """
        received: list[int] = []
        previous = {sig: signal.signal(sig, lambda signum, _: received.append(signum)) for sig in STOP_SIGNALS}
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="run-all")
        try:
            pending = {pool.submit(self._job, name, run) for name in names}
            while pending and not received:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # a bug in the runner itself, not a notebook failure: let it show
        except BaseException:
            self.stop()
            raise
        finally:
            if received:
                self.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return received[0] if received else None
