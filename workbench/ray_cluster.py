"""Connecting to Ray, the optional distributed engine (``pip install 'workbench[distributed]'``).

``engine="ray"`` of :func:`workbench.cache.extract`, :func:`workbench.analysis.nearest_neighbors`
and :func:`workbench.analysis.memorization_report` run their work on a Ray cluster. Ray is
imported only there (:func:`import_ray`), so the workbench starts without it.

Addresses (``ray_address=`` / ``--ray [ADDRESS]``):

* ``None`` (``--ray`` alone): a Ray instance is started on this machine for this process (it
  stops when the process exits, or with ``ray.shutdown()``);
* ``"auto"``: the cluster that ``ray start`` runs on this machine;
* ``"HOST:PORT"``: the cluster whose head node listens there (``ray start --head --port PORT``).

A process already connected to Ray (``ray.init`` called before, by the user or an earlier
call) keeps its connection.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

EXTRA_HINT = "pip install 'workbench[distributed]'  (or: pip install 'ray[data]')"


def import_ray() -> Any:
    """The ``ray`` module (with ``ray.data``).

    Raises:
        ImportError: Ray is not installed; the message names the ``distributed`` extra.
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(
            f"engine='ray' (--ray) needs Ray, the optional `distributed` extra of the workbench: {EXTRA_HINT}"
        ) from exc
    return ray


def check_address(address: str | None) -> str | None:
    """Validate ``address``: None, ``"auto"`` or ``"HOST:PORT"`` (also ``ray://HOST:PORT``).

    Raises:
        ValueError: anything else (the message shows the accepted forms).
    """
    if address is None or address == "auto":
        return address
    if not isinstance(address, str):
        raise ValueError(f"ray_address must be None, 'auto' or 'HOST:PORT'; got {address!r}")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"--ray {address!r}: expected HOST:PORT of a running Ray head node (e.g. 10.0.0.5:6379), "
            "'auto' (the cluster `ray start` runs on this machine), or nothing (start a local instance)"
        )
    return address


def connect(address: str | None = None) -> Any:
    """Connect this process to Ray (see the module docstring) and return the ``ray`` module.

    Ray's own start-up messages are kept to warnings; its Data progress bars are turned off
    (the workbench shows its own progress).

    Raises:
        ImportError: Ray is missing. ValueError: a malformed address.
        ConnectionError: no Ray cluster answers at ``address`` (the message says how to start one).
    """
    address = check_address(address)
    ray = import_ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise ConnectionError(
                f"no Ray cluster answers at {address!r} ({exc}); start one with `ray start --head` "
                "(and `ray start --address HEAD:PORT` on the other nodes), or leave the address out to "
                "start a local instance"
            ) from exc
    with warnings.catch_warnings():  # Ray Data's own deprecated settings, read when the context is made
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    return ray


def cluster_resources() -> dict[str, float]:
    """CPUs and GPUs of the connected cluster, ``{"CPU": n, "GPU": m}`` (0 when absent)."""
    ray = import_ray()
    res = ray.cluster_resources()
    return {"CPU": float(res.get("CPU", 0.0)), "GPU": float(res.get("GPU", 0.0))}
