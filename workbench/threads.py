"""Capping the CPU threads of torch, BLAS/OpenMP (numpy, scipy) and faiss inside a block.

On a small or shared machine, two spinning OpenMP/OpenBLAS threads per process can be 5-100x
slower than one (measured here on a loaded 2-core machine: a 128-d Frechet distance took 1.8 s
with 2 OpenBLAS threads, 8 ms with 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in torch, BLAS/OpenMP and faiss; None = as is.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with limit_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None; got {threads!r}")
    import torch
    from threadpoolctl import threadpool_limits

    try:
        import faiss
    except ImportError:
        faiss = None
    old_torch = torch.get_num_threads()
    old_faiss = faiss.omp_get_max_threads() if faiss is not None else None
    torch.set_num_threads(threads)
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(old_torch)
        if faiss is not None:
            faiss.omp_set_num_threads(old_faiss)
