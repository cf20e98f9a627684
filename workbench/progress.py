"""One progress contract for every long-running function of the workbench.

Every ``progress=`` argument (extraction, metric suites, nearest-neighbour searches, memorization
reports) accepts the same three kinds of value:

* ``True``: a progress bar on stderr (tqdm; a notebook bar in Jupyter);
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
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast


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


class ProgressReporter:
    """Reports the progress of one task according to the contract (see the module docstring).

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
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=task, unit=unit, leave=leave, file=sys.stderr, smoothing=0.1
            )
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
