"""Lazily imported package exports (PEP 562 module ``__getattr__``), shared by every package.

A package lists its exports once, name -> submodule (relative to the package)::

    __getattr__, __dir__, __all__ = attach(__name__, {"human_agreement": "agreement", ...})

    if TYPE_CHECKING:  # what mypy, pyright and IDEs read; tests check it matches the table
        from .agreement import human_agreement

The first access to ``package.name`` (attribute access, ``from package import name`` or
``hasattr``) imports ``package.submodule``, takes ``submodule.name`` and stores it in the
package's namespace, so every later access is an ordinary global lookup that returns the same
object and never runs ``__getattr__`` again. Unknown names raise :class:`AttributeError`.

Exports must not share their name with a submodule of the package: importing a submodule for the
first time sets it as an attribute of its package and would replace the export. :func:`attach`
refuses a table whose export names one of its own submodules; ``tests/test_exports.py`` checks
every package against all of its submodules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["attach"]


def attach(
    package_name: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Make ``exports`` (export name -> submodule name) lazy attributes of a package.

    Args:
        package_name: the package's ``__name__``; the package must be in :data:`sys.modules`
            (true while its ``__init__`` runs).
        exports: export name -> name of the submodule (or subpackage) that defines it, relative
            to the package (``"agreement"`` for ``package.agreement``).

    Returns:
        ``(__getattr__, __dir__, __all__)`` to assign in the package's ``__init__``;
        ``__all__`` is the sorted export names.

    Raises:
        ValueError: an export has the name of one of the listed submodules.
    """
    table = dict(exports)
    clashes = sorted(set(table) & set(table.values()))
    if clashes:
        raise ValueError(f"{package_name}: exports {clashes} have the name of a submodule, which would shadow them")
    namespace = vars(sys.modules[package_name])

    def __getattr__(name: str) -> Any:
        try:
            submodule = table[name]
        except KeyError:
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}") from None
        value = getattr(import_module(f"{package_name}.{submodule}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__, sorted(table)
