"""Build of the optional native tile kernels (``workbench.metrics._tiles``).

Everything else is declared in pyproject.toml. The kernels are optional: without a C compiler
the install still succeeds and :mod:`workbench.metrics.tile_kernels` falls back to numpy (same
results, slower k-NN and radius-count passes). On x86-64 the source is built twice, for the
SSE2 baseline and for AVX2; the loader picks the one this CPU runs.
"""

import platform

from setuptools import Extension, setup

SOURCE = ["workbench/metrics/_tiles.c"]
# -ffp-contract=off: no fused multiply-adds, so both builds round every operation alike
FLAGS = ["-O3", "-pthread", "-ffp-contract=off"]


def kernels(name: str, flags: list[str]) -> Extension:
    return Extension(
        f"workbench.metrics.{name}",
        sources=SOURCE,
        define_macros=[("TILES_MODULE", name)],
        extra_compile_args=FLAGS + flags,
        extra_link_args=["-pthread"],
        optional=True,
    )


extensions = [kernels("_tiles", [])]
if platform.machine().lower() in ("x86_64", "amd64"):
    extensions.append(kernels("_tiles_avx2", ["-mavx2"]))

setup(ext_modules=extensions)
