"""Threads chosen from what is free: WORKBENCH_THREADS, busy cores, every pool at once."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from workbench.metrics import evaluate
from workbench.threads import _cores, auto_threads, free_threads, uses_free_threads


def _spin(seconds: float, started=None) -> None:
    if started is not None:
        started.set()
    end = time.time() + seconds
    while time.time() < end:
        pass


def test_env_override_caps_every_pool_inside_metrics(monkeypatch) -> None:
    import torch

    monkeypatch.setenv("WORKBENCH_THREADS", "1")
    assert free_threads() == 1
    seen = {}

    @uses_free_threads
    def probe() -> None:
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {pool["num_threads"] for pool in threadpool_info()}

    before = torch.get_num_threads()
    probe()
    assert seen == {"torch": 1, "blas": {1}}
    assert torch.get_num_threads() == before  # restored after the block
    rng = np.random.default_rng(0)
    report = evaluate(rng.normal(size=(40, 3)), {"a": rng.normal(size=(30, 3))}, metrics="fd")
    assert np.isfinite(report.values.at["a", "fd"])


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_env_value_is_a_clear_error(monkeypatch, value: str) -> None:
    monkeypatch.setenv("WORKBENCH_THREADS", value)
    with pytest.raises(ValueError, match="WORKBENCH_THREADS must be a positive integer"):
        free_threads()


def _within_tries(check: Callable[[], bool], tries: int = 5, pause: float = 0.2) -> bool:
    """True when ``check()`` holds at one of ``tries`` attempts ``pause`` seconds apart."""
    for _ in range(tries):
        if check():
            return True
        time.sleep(pause)
    return False


def test_a_busy_core_is_left_alone(monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_THREADS", raising=False)
    if _cores() < 2 or not os.path.exists("/proc/loadavg"):
        pytest.skip("needs 2 cores and /proc/loadavg")
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    spinner = ctx.Process(target=_spin, args=(20.0, started), daemon=True)
    spinner.start()
    try:
        # A spawned child imports this module (torch included) first: seconds on a loaded machine.
        assert started.wait(120), "the spinning process did not start"
        time.sleep(0.5)  # let it be seen running
        import torch

        def chosen() -> int:
            with auto_threads():
                return torch.get_num_threads()

        # The count of runnable tasks in /proc/loadavg is a sample, not an exact figure: on a loaded
        # machine a reading now and then misses the spinner (free_threads then keeps every core, by
        # design), so each check gets a few tries a moment apart.
        assert _within_tries(lambda: free_threads() <= _cores() - 1)
        assert _within_tries(lambda: chosen() <= _cores() - 1)
    finally:
        spinner.terminate()
        spinner.join()
