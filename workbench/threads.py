"""Capping the CPU threads of torch, BLAS/OpenMP (numpy, scipy) and faiss inside a block.

On a small or shared machine, two spinning OpenMP/OpenBLAS threads per process can be 5-100x
slower than one (measured here on a loaded 2-core machine: a 128-d Frechet distance took 1.8 s
with 2 OpenBLAS threads, 8 ms with 1). :func:`free_threads` says how many cores are free now
(``WORKBENCH_THREADS`` overrides it) and :func:`auto_threads` runs a block with that many threads
in every pool at once, so the pools never oversubscribe the cores other processes are using.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

THREADS_ENV = "WORKBENCH_THREADS"


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _runnable_now() -> int | None:
    """Runnable scheduling entities on the machine at this instant (the fourth field of
    ``/proc/loadavg``; unlike the load averages, it does not lag by a minute), None off Linux."""
    try:
        with open("/proc/loadavg") as fh:
            return int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_runnable() -> int:
    """Threads of this process that are runnable now (their own pools, a progress or sampling
    thread, the reading thread itself): not *other* work competing for the cores."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        count += state == "R"
    return max(1, count)


_SAMPLES = 4
_SAMPLE_GAP_S = 0.003


def _others_running() -> int:
    """Runnable tasks of other processes now (Linux), else 0: the smallest of a few samples a few
    milliseconds apart, so that a task that runs for an instant (a shell, a kernel worker) does not
    halve the threads of a minute-long computation, while a process spinning on a core counts."""
    import time

    seen = []
    for i in range(_SAMPLES):
        if i:
            time.sleep(_SAMPLE_GAP_S)
        total = _runnable_now()
        if total is None:
            return 0
        seen.append(max(0, total - _own_runnable()))
        if seen[-1] == 0:
            break  # nothing else runs: no later sample can say less
    return min(seen)


def free_threads() -> int:
    """Threads a compute kernel of this process should use now.

    ``$WORKBENCH_THREADS`` when set (a positive integer); otherwise the cores this process may run
    on minus the tasks other processes are running at this instant, at least 1.

    Raises:
        ValueError: ``WORKBENCH_THREADS`` is set to something that is not a positive integer.
    """
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer (threads); got {env!r}")
        return value
    return max(1, _cores() - _others_running())


_inside = threading.local()


@contextmanager
def auto_threads() -> Iterator[None]:
    """Run the block with :func:`free_threads` threads in torch, BLAS/OpenMP and faiss together.

    Nested blocks (a metric inside :func:`~workbench.metrics.suite.evaluate`, a bootstrap
    replicate) keep the outer choice and cost nothing.
    """
    if getattr(_inside, "active", False):
        yield
        return
    threads = free_threads()
    if threads >= _cores() and not os.environ.get(THREADS_ENV, "").strip():
        yield  # every core is free: the pools' own defaults already use them all
        return
    _inside.active = True
    try:
        with limit_threads(threads):
            yield
    finally:
        _inside.active = False


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    """threadpoolctl's view of the loaded BLAS/OpenMP pools, made once (scanning costs ~10 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in torch, BLAS/OpenMP and faiss; None = as is.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with limit_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None; got {threads!r}")
    import torch

    try:
        import faiss
    except ImportError:
        faiss = None
    old_torch = torch.get_num_threads()
    old_faiss = faiss.omp_get_max_threads() if faiss is not None else None
    torch.set_num_threads(threads)
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    try:
        with _controller().limit(limits=threads):
            yield
    finally:
        torch.set_num_threads(old_torch)
        if faiss is not None:
            faiss.omp_set_num_threads(old_faiss)


F = TypeVar("F", bound=Callable[..., Any])


def uses_free_threads(fn: F) -> F:
    """Decorate a compute function so that it runs inside :func:`auto_threads`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with auto_threads():
            return fn(*args, **kwargs)

    return cast(F, wrapper)
