"""One progress contract for every long-running function of the workbench.

Every ``progress=`` argument (extraction, metric suites, nearest-neighbour searches, memorization
reports) accepts the same three kinds of value:

* ``True``: a progress bar on stderr (tqdm; a notebook bar in Jupyter). When stderr is not a
  terminal (a log file, CI, a pipe) plain lines instead (:class:`LineProgress`): one at the start,
  one about every 10% or every 30 s, and one at the end, each with the rate and the time left,
  where a bar would fill the log with carriage-return redraws;
* ``False`` or ``None``: silence;
* a callable ``fn(event)`` receiving :class:`ProgressEvent` objects: ``event.task`` (what runs,
  e.g. ``"extract inception"``), ``event.done`` / ``event.total`` (steps, ``total`` None when
  unknown) and ``event.message`` (a line for humans, possibly empty). ``str(event)`` is that
  line, so ``progress=print`` works everywhere.

Callables written for the older ``fn(done, total)`` form are still accepted (with a
``DeprecationWarning``) and called as before.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, TypeAlias, cast


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes:
        task: what is running, e.g. ``"extract pixels"``, ``"k-NN search"``, ``"metrics"``.
        done: steps finished so far (images, tiles, metric cells, ...).
        total: steps in all, or None when unknown.
        message: a line for humans (e.g. ``"fd · model-a"``); may be empty.
    """

    task: str
    done: int
    total: int | None
    message: str = ""

    def __str__(self) -> str:
        if self.message:
            return self.message
        of = f"/{self.total}" if self.total is not None else ""
        return f"{self.task}: {self.done}{of}"


ProgressCallback: TypeAlias = Callable[[ProgressEvent], None]
Progress: TypeAlias = "bool | ProgressCallback | Callable[[int, int], None] | None"


def _is_legacy(fn: Callable[..., Any]) -> bool:
    """True for a callable written for ``fn(done, total)`` (two required positional parameters)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required) >= 2


def check_progress(progress: object, argument: str = "progress") -> None:
    """Raise a TypeError naming ``argument`` unless ``progress`` follows the contract."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise TypeError(
        f"{argument} must be True (a progress bar), False/None (silence) or a callable receiving "
        f"ProgressEvent objects; got {progress!r}"
    )


def _is_terminal(stream: object) -> bool:
    """True when ``stream`` is an interactive terminal (``isatty()``); False for files, pipes and
    streams without ``isatty``."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where tqdm.auto draws a notebook widget (stderr is no tty there)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython without a running shell
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class LineProgress:
    """Progress as plain lines, for a log file, CI or a pipe (what ``progress=True`` shows when
    stderr is not a terminal): the part of tqdm's interface :class:`ProgressReporter` uses.

    Lines (``task`` first, then what is known):
    ``"extract pixels: started, 1200 img"``, then at every 10% step (``every_fraction``) or after
    ``every_seconds`` (30 s) without a line, ``"extract pixels: 40% (480/1200 img), 35.2 img/s,
    13.6 s elapsed, ETA 20 s"`` (no percentage or ETA when the total is unknown), and at
    :meth:`close` ``"extract pixels: done, 1200/1200 img in 34 s (35.3 img/s)"``. Rates count the
    steps of this run only (not ``initial``, the steps done before a resume).

    Args:
        task: the label of every line.
        total: steps in all, or None when unknown.
        unit: the step's unit (``"img"``, ``"tile"``).
        initial: steps already done.
        stream: where lines go (flushed after each).
        every_fraction: a line each time this share of ``total`` more is done.
        every_seconds: a line at the next step after this long without one (seconds).
        clock: a monotonic clock in seconds (tests pass a fake one).
        transient: a short step (a bar that would not stay on a terminal, ``leave=False``): no
            line at all unless it runs longer than ``every_seconds``; then its status lines and
            its end line as usual.
    """

    def __init__(
        self,
        task: str,
        total: int | None,
        *,
        unit: str = "it",
        initial: int = 0,
        stream: IO[str] | None = None,
        every_fraction: float = 0.1,
        every_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        transient: bool = False,
    ) -> None:
        self.task, self.total, self.unit = task, total, unit
        self.n = self.initial = int(initial)
        self.stream = stream if stream is not None else sys.stderr
        self.every_fraction, self.every_seconds = float(every_fraction), float(every_seconds)
        self._clock = clock
        self._start = self._last = clock()
        self._bucket = self._bucket_of(self.n)
        self._closed = False
        self._transient = transient
        self._written = False
        if not transient:
            size = f", {total} {unit}" if total is not None else ""
            resumed = f" ({self.initial} already done)" if self.initial else ""
            self._write(f"{task}: started{size}{resumed}")

    def _bucket_of(self, n: int) -> int:
        if not self.total or self.every_fraction <= 0:
            return 0
        return int(math.floor(n / self.total / self.every_fraction + 1e-9))

    def _write(self, line: str) -> None:
        self._written = True
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (ValueError, OSError):  # a closed or broken stream must not stop the work
            pass

    def _rate_text(self, rate: float) -> str:
        if not math.isfinite(rate):
            return f"? {self.unit}/s"
        return f"{rate:.0f} {self.unit}/s" if rate >= 100 else f"{rate:.3g} {self.unit}/s"

    def _rate(self, now: float) -> float:
        elapsed = now - self._start
        return (self.n - self.initial) / elapsed if elapsed > 0 else math.nan

    def _status(self, now: float) -> str:
        rate = self._rate(now)
        rate_text = self._rate_text(rate)
        elapsed = f"{_duration(now - self._start)} elapsed"
        if self.total:
            eta = (self.total - self.n) / rate if math.isfinite(rate) and rate > 0 else math.inf
            pct = 100.0 * self.n / self.total
            return (
                f"{self.task}: {pct:.0f}% ({self.n}/{self.total} {self.unit}), {rate_text}, {elapsed}, "
                f"ETA {_duration(eta)}"
            )
        return f"{self.task}: {self.n} {self.unit}, {rate_text}, {elapsed}"

    def update(self, n: int = 1) -> None:
        """``n`` more steps; writes a line when a 10% step is crossed or 30 s passed since the last."""
        self.n += int(n)
        now = self._clock()
        bucket = self._bucket_of(self.n)
        finished = self.total is not None and self.n >= self.total
        due = bucket > self._bucket and not (self._transient and not self._written)
        if not finished and (due or now - self._last >= self.every_seconds):
            self._write(self._status(now))
            self._last = now
        self._bucket = max(self._bucket, bucket)

    def set_postfix_str(self, message: str, refresh: bool = True) -> None:
        """A message line, ``"task: message"``."""
        if message:
            self._write(f"{self.task}: {message}")

    def close(self) -> None:
        """The end line (once): steps done, time taken, rate."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        if self._transient and not self._written and now - self._start < self.every_seconds:
            return  # a short step: nothing to say in a log
        of = f"/{self.total}" if self.total is not None else ""
        rate = self._rate(now)
        rate_text = f" ({self._rate_text(rate)})" if math.isfinite(rate) and self.n > self.initial else ""
        state = "done" if self.total is None or self.n >= self.total else "stopped"
        self._write(f"{self.task}: {state}, {self.n}{of} {self.unit} in {_duration(now - self._start)}{rate_text}")


class ProgressReporter:
    """Reports the progress of one task according to the contract (see the module docstring).

    ``progress=True`` draws a tqdm bar on a terminal (or in Jupyter) and writes
    :class:`LineProgress` lines when stderr is not a terminal.

    Args:
        progress: the caller's ``progress=`` value.
        task: what runs (the bar's label, ``ProgressEvent.task``).
        total: steps in all, or None.
        unit: the bar's unit (``"img"``, ``"tile"``, ...).
        leave: keep the finished bar on screen.
        initial: steps already done (a resumed task).
    """

    def __init__(
        self,
        progress: Progress,
        task: str,
        total: int | None = None,
        *,
        unit: str = "it",
        leave: bool = True,
        initial: int = 0,
    ) -> None:
        check_progress(progress)
        self.task, self.total, self.done = task, total, int(initial)
        self._bar: Any = None
        self._fn: Callable[[ProgressEvent], None] | None = None
        self._legacy = False
        if progress is True:
            stream = sys.stderr
            if _is_terminal(stream) or _in_notebook():
                from tqdm.auto import tqdm

                self._bar = tqdm(
                    total=total, initial=initial, desc=task, unit=unit, leave=leave, file=stream, smoothing=0.1
                )
            else:  # a log file, CI, a pipe: plain lines, no carriage-return redraws
                self._bar = LineProgress(task, total, unit=unit, initial=initial, stream=stream, transient=not leave)
        elif callable(progress):
            if _is_legacy(progress):
                warnings.warn(
                    "progress callables of the form fn(done, total) are deprecated; take one ProgressEvent "
                    "argument instead (event.done, event.total, event.message)",
                    DeprecationWarning,
                    stacklevel=3,
                )
                legacy = cast(Callable[[int, int], None], progress)
                self._legacy = True

                def adapt(event: ProgressEvent) -> None:
                    legacy(event.done, event.total if event.total is not None else 0)

                self._fn = adapt
            else:
                self._fn = cast(ProgressCallback, progress)

    @property
    def active(self) -> bool:
        """True when anything is shown or called."""
        return self._bar is not None or self._fn is not None

    def advance(self, n: int = 1, message: str = "") -> None:
        """``n`` more steps are done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._fn is not None:
            self._fn(ProgressEvent(self.task, self.done, self.total, message))

    def say(self, message: str) -> None:
        """A message without a step: the bar's postfix, or an event with ``message``."""
        if self._bar is not None:
            self._bar.set_postfix_str(message, refresh=True)
        if self._fn is not None and not self._legacy:  # fn(done, total) had no messages
            self._fn(ProgressEvent(self.task, self.done, self.total, message))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
