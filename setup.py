"""Build of the optional native tile kernels (``workbench.metrics._tiles``).

Everything else is declared in pyproject.toml. The kernels are optional: without a C compiler
the install still succeeds and :mod:`workbench.metrics.tile_kernels` falls back to numpy (same
results, slower k-NN and radius-count passes). On x86-64 the source is built twice, for the
SSE2 baseline and for AVX2; the loader picks the one this CPU runs.

Threads come from OpenMP where the compiler has it: with GCC the kernels link ``libgomp.so.1``,
which resolves to the GNU OpenMP runtime PyTorch already loaded, so the kernels and torch's
matrix products share one pool of threads (two pools on two cores fight: the kernels' threads
would wait for torch's spinning ones). Without OpenMP the same source uses POSIX threads.
"""

import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, LinkError

SOURCE = ["workbench/metrics/_tiles.c"]
# -ffp-contract=off: no fused multiply-adds, so every build rounds every operation alike
FLAGS = ["-O3", "-pthread", "-ffp-contract=off", "-Wno-psabi"]
OPENMP = "-fopenmp"


class BuildWithOpenMPFallback(build_ext):
    """Build with OpenMP; where the compiler lacks it (Apple clang), build with POSIX threads."""

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, CompileError, LinkError):
            if OPENMP not in ext.extra_compile_args:
                raise
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a != OPENMP]
            ext.extra_link_args = [a for a in ext.extra_link_args if a != OPENMP]
            super().build_extension(ext)


def kernels(name: str, flags: list[str]) -> Extension:
    return Extension(
        f"workbench.metrics.{name}",
        sources=SOURCE,
        define_macros=[("TILES_MODULE", name)],
        extra_compile_args=[*FLAGS, OPENMP, *flags],
        extra_link_args=["-pthread", OPENMP],
        optional=True,
    )


extensions = [kernels("_tiles", [])]
if platform.machine().lower() in ("x86_64", "amd64"):
    extensions.append(kernels("_tiles_avx2", ["-mavx2"]))

setup(ext_modules=extensions, cmdclass={"build_ext": BuildWithOpenMPFallback})
