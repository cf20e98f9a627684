"""Where the workbench finds its shipped reference data and keeps downloaded weights."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+; 3.10 has importlib.abc.Traversable
    from importlib.resources.abc import Traversable

#: Package whose folder holds the shipped reference data (``workbench/data/``).
DATA_PACKAGE = "workbench.data"


def data_dir() -> Traversable:
    """The shipped reference data (human-study CSVs, published metrics, class names).

    ``$WORKBENCH_DATA_DIR`` overrides it with a folder of the same layout (a :class:`~pathlib.Path`);
    otherwise it is ``importlib.resources.files("workbench.data")``, the data installed with the
    package (a ``Path`` for every ordinary install, editable or not). Read files through the
    returned object (``(data_dir() / "published" / "x.csv").open("rb")``, ``.read_text()``),
    which works for any install, rather than building file-system paths from it.

    Raises:
        FileNotFoundError: ``$WORKBENCH_DATA_DIR`` is set but is not a directory.
    """
    env = os.environ.get("WORKBENCH_DATA_DIR")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise FileNotFoundError(
                f"WORKBENCH_DATA_DIR={env!r} is not a directory; unset it to use the data shipped "
                f"with the package ({DATA_PACKAGE})"
            )
        return path
    return resources.files(DATA_PACKAGE)


def weights_dir() -> Path:
    """Directory searched for local weight files: ``$WORKBENCH_WEIGHTS_DIR`` or ``~/.cache/workbench/weights``."""
    env = os.environ.get("WORKBENCH_WEIGHTS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "workbench" / "weights"
