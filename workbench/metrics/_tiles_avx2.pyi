"""Type stub of the AVX2 build of the native tile kernels (``_tiles.c``); see ``_tiles.pyi``."""

from typing_extensions import Buffer

def push_topk(
    tile: Buffer,
    rows: int,
    cols: int,
    vals: Buffer,
    ids: Buffer,
    worst: Buffer,
    m: int,
    row_heap: int,
    row_id0: int,
    col_heap: int,
    col_id0: int,
    row_add: Buffer | None,
    threads: int,
    /,
) -> None: ...
def count_tile(
    tile: Buffer, rows: int, cols: int, row_add: Buffer | None, threads: int, /, *criteria: object
) -> tuple[tuple[int, ...], tuple[int, ...]]: ...
def centre_rows(x: Buffer, n: int, dim: int, centre: Buffer, out: Buffer, sq: Buffer, threads: int, /) -> None: ...
def pair_sq_dists(
    a: Buffer,
    a64: bool,
    na: int,
    b: Buffer,
    b64: bool,
    nb: int,
    dim: int,
    ia: Buffer | None,
    ib: Buffer | None,
    n: int,
    out: Buffer,
    threads: int,
    /,
) -> None: ...
def cpu_has_avx2() -> bool: ...
def openmp() -> bool: ...
