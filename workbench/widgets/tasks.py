"""Long computations off the kernel's main thread, with a visible status line.

A view never blocks silently: UMAP, metric tables on large sets, memorization searches run in a
:class:`BackgroundTask`, whose status (an ``ipywidgets.HTML``) shows what runs and for how long,
updated every second, then "done in 12.3 s" or the error. The result is handed to ``on_done``
(called in the worker thread; ipywidgets may be updated from there: the kernel sends the
messages). ``background=False`` runs the same code synchronously (tests, static reports).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W

SPINNER = "◐◓◑◒"


def status_widget(css_class: str = "wb-status") -> W.HTML:
    """An empty status line with the CSS class views use for it."""
    w = W.HTML("")
    w.add_class(css_class)
    return w


def set_status(status: W.HTML | None, text: str, *, kind: str = "info") -> None:
    """Show ``text`` (escaped) in ``status``: kind ``info``, ``busy``, ``ok`` or ``error``."""
    if status is None:
        return
    colour = {"info": "#555", "busy": "#1f5fa8", "ok": "#2b7a2b", "error": "#b00020"}[kind]
    status.value = f'<span class="wb-status-{kind}" style="color:{colour}">{html.escape(text)}</span>'


class BackgroundTask:
    """Run ``fn()`` once, in a thread (or now), reporting progress in ``status``.

    Args:
        fn: the computation; its return value goes to ``on_done``.
        label: what runs, e.g. ``"UMAP of 60,000 points"``.
        status: the status line to update (may be None).
        on_done: called with the result (in the worker thread when ``background``).
        on_error: called with the exception; by default the error is only shown.
        hint: extra text shown while running (e.g. "first run compiles numba: ~1-2 min").
        background: run in a daemon thread (True) or synchronously in :meth:`start` (False).
        tick: seconds between status updates.
    """

    def __init__(
        self,
        fn: Callable[[], Any],
        *,
        label: str,
        status: W.HTML | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        hint: str = "",
        background: bool = True,
        tick: float = 1.0,
    ) -> None:
        self.fn = fn
        self.label = label
        self.status = status
        self.on_done = on_done
        self.on_error = on_error
        self.hint = hint
        self.background = background
        self.tick = tick
        self.result: Any = None
        self.error: BaseException | None = None
        self.started: float | None = None
        self.seconds: float | None = None
        self._finished = threading.Event()
        self._status_lock = threading.Lock()
        self._final = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.started is not None and not self._finished.is_set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def start(self) -> BackgroundTask:
        """Start (once); returns self."""
        if self.started is not None:
            return self
        self.started = time.perf_counter()
        set_status(self.status, f"{SPINNER[0]} {self.label}: starting… {self.hint}".strip(), kind="busy")
        if not self.background:
            self._run()
            return self
        self._thread = threading.Thread(target=self._run, name=f"workbench: {self.label}", daemon=True)
        self._thread.start()
        if self.status is not None:
            threading.Thread(target=self._ticker, name="workbench: status", daemon=True).start()
        return self

    def wait(self, timeout: float | None = None) -> Any:
        """Block until done (or ``timeout`` seconds); re-raise the task's error; return the result."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"{self.label} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    def join(self, timeout: float | None = None) -> bool:
        """Wait until done (or ``timeout`` seconds) without raising; True when done."""
        return self._finished.wait(timeout)

    def _ticker(self) -> None:
        i = 0
        while not self._finished.wait(self.tick):
            i += 1
            elapsed = time.perf_counter() - (self.started or 0.0)
            text = f"{SPINNER[i % len(SPINNER)]} {self.label}: running, {elapsed:.0f} s"
            with self._status_lock:
                if not self._final:
                    set_status(self.status, f"{text} {self.hint}".strip(), kind="busy")

    def _run(self) -> None:
        try:
            self.result = self.fn()
            self.seconds = time.perf_counter() - (self.started or 0.0)
            if self.on_done is not None:
                self.on_done(self.result)
            self._final_status(f"{self.label}: done in {self.seconds:.1f} s", "ok")
        except BaseException as exc:  # shown to the user; re-raised by wait()
            self.error = exc
            self.seconds = time.perf_counter() - (self.started or 0.0)
            self._final_status(f"{self.label} failed: {type(exc).__name__}: {exc}", "error")
            if self.on_error is not None:
                self.on_error(exc)
        finally:
            self._finished.set()

    def _final_status(self, text: str, kind: str) -> None:
        with self._status_lock:
            self._final = True
            set_status(self.status, text, kind=kind)
