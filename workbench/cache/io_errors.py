"""Turning operating-system write failures into one-line :class:`CacheError` messages.

Disk full, read-only folders and missing permissions are ordinary events on shared machines; the
user needs the file, the reason and what to do, not a traceback.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from .manifest import CacheError


class CacheWriteError(CacheError):
    """A cache file could not be written (disk full, read-only folder, no permission, ...)."""


def write_error_message(exc: OSError, where: Path, kept: str = "") -> str:
    """A one-line explanation of ``exc`` raised while writing under ``where``."""
    target = exc.filename or where
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"no space left on the device of {where} while writing {target}: free some space or choose another --out"
    elif exc.errno in (errno.EROFS,):
        what = f"{where} is on a read-only file system (writing {target}): choose a writable --out"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = f"no permission to write {target}: choose a folder you can write to with --out"
    else:
        what = f"cannot write {target}: {exc.strerror or exc}"
    return what + (f"; {kept}" if kept else "")


@contextlib.contextmanager
def write_errors(where: Path, kept: str = "") -> Iterator[None]:
    """Re-raise any ``OSError`` of the block as :class:`CacheWriteError` naming ``where``.

    ``kept`` says what survived (e.g. "finished chunks are kept; re-run to resume").
    """
    try:
        yield
    except CacheError:
        raise
    except OSError as exc:
        raise CacheWriteError(write_error_message(exc, Path(where), kept)) from exc
