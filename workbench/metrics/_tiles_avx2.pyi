"""Type stub of the AVX2 build of the native tile kernels (``_tiles.c``): the same functions as ``_tiles``."""

from workbench.metrics._tiles import *  # noqa: F403
