"""One writer per cache directory: an OS file lock (``filelock``) held while a cache is written.

The lock is ``<cache>/.lock`` (``flock`` on POSIX): the operating system releases it when the
process holding it exits, so the lock of a killed process (``kill -9``, a crash, a lost SSH
session) is recovered by the next run without any clean-up. ``<cache>/.writer.json`` names the
holder (pid, host, start time) so that a waiting run can say whom it waits for.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from .manifest import CacheError

LOCK_FILE = ".lock"
WRITER_FILE = ".writer.json"


class CacheBusyError(CacheError):
    """Another process is writing the same cache and the caller chose not to wait."""


def _holder(directory: Path) -> str:
    try:
        info = json.loads((directory / WRITER_FILE).read_text())
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class WriterLock:
    """Hold the writer lock of ``directory`` (created if needed) for the ``with`` block.

    Args:
        directory: the cache directory.
        wait: wait for another writer to finish (True) or raise :class:`CacheBusyError` at once.
        say: where to print the one-line "waiting for ..." message.
        poll: seconds between attempts while waiting.
    """

    def __init__(
        self, directory: Path, *, wait: bool = True, say: Callable[[str], None] = print, poll: float = 0.5
    ) -> None:
        self.directory = Path(directory)
        self.wait = wait
        self.say = say
        self.poll = poll
        self._lock = FileLock(str(self.directory / LOCK_FILE))

    def __enter__(self) -> WriterLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = _holder(self.directory)
            if not self.wait:
                raise CacheBusyError(
                    f"{self.directory} is being written by {holder}; wait for it to finish "
                    "(run again without --no-wait) or choose another --out"
                ) from None
            self.say(f"waiting for {holder}, which is writing {self.directory} (Ctrl-C to stop waiting)")
            t0 = time.monotonic()
            self._lock.acquire(timeout=-1, poll_interval=self.poll)
            self.say(f"the other writer finished after {time.monotonic() - t0:.0f} s; continuing")
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            (self.directory / WRITER_FILE).write_text(json.dumps(info) + "\n")
        except OSError:
            pass  # informational only
        return self

    def __exit__(self, *exc: object) -> None:
        (self.directory / WRITER_FILE).unlink(missing_ok=True)
        self._lock.release()
