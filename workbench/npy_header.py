"""Reading the header of an ``.npy`` stream without reading (or unpickling) its data."""

from __future__ import annotations

from typing import IO

import numpy as np


def read_npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse an ``.npy`` header at the stream's position: ``(shape, fortran_order, dtype, header_end)``.

    ``header_end`` is the stream offset where the array data starts (relative to where the
    ``.npy`` content began when the stream starts there). Raises ValueError for a bad header.
    """
    start = fh.tell()
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(shape), bool(fortran), dtype, fh.tell() - start
