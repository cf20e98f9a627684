"""Every package's ``__all__`` names the objects themselves, never a submodule, on every access.

Importing a submodule for the first time sets it as an attribute of its package, so a submodule
named like an export (``workbench/analysis/human_agreement.py`` exporting ``human_agreement``)
once turned ``workbench.analysis.human_agreement`` into the module after its first use. Checked
here for every package under ``workbench``: repeated ``getattr`` and ``from pkg import name``
give one non-module object, also after all submodules are imported (in a fresh interpreter, in
both orders); no submodule has the name of an export; the ``if TYPE_CHECKING:`` imports that
static tools read match the lazy table of :func:`workbench.lazy_exports.attach`; and
``import workbench`` (and the other packages that are torch-free) does not import torch.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.lazy_exports import attach

ROOT = Path(workbench.__file__).resolve().parent.parent


def _packages() -> list[str]:
    """Every package under ``workbench`` (found on disk, nothing imported)."""
    found = ["workbench"]
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if info.ispkg:
            found.append(info.name)
    return sorted(found)


PACKAGES = _packages()

# Eager packages (``from .prdc import prdc`` in ``__init__``) whose submodules share an
# export's name. The ``__init__`` binds the export right after it first imports the submodule,
# so the export is never shadowed (checked below), but ``import workbench.metrics.prdc as m``
# gives the function, not the module. Listed exactly, so a new clash (or a fixed one) fails.
EAGER_NAME_CLASHES = {
    "workbench.metrics": {
        "authenticity",
        "bootstrap",
        "cmmd",
        "ct_score",
        "fd_infinity",
        "fld",
        "inception_score",
        "mifid",
        "prdc",
        "precision_recall",
        "sliced_wasserstein",
        "vendi",
    },
}

# Packages whose import does not import torch. ``workbench.cache`` (extraction.py),
# ``workbench.demo`` (extractors.py), ``workbench.extractors`` and ``workbench.metrics``
# (fld.py, neighbors.py) import torch eagerly through their submodules.
TORCH_FREE = [
    "workbench",
    "workbench.analysis",
    "workbench.cache",
    "workbench.cli",
    "workbench.demo",
    "workbench.images",
    "workbench.widgets",
]


def _init_source(package: str) -> ast.Module:
    path = ROOT.joinpath(*package.split(".")) / "__init__.py"
    return ast.parse(path.read_text(), filename=str(path))


def _lazy_table(tree: ast.Module) -> dict[str, str] | None:
    """The literal ``{export: submodule}`` passed to ``attach(__name__, {...})``, if any."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "attach":
            assert len(node.args) == 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == "__name__"
            return ast.literal_eval(node.args[1])
    return None


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """``{name: submodule}`` of the ``from .submodule import name`` lines under ``if TYPE_CHECKING:``."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module, ast.unparse(stmt)
                for alias in stmt.names:
                    name = alias.asname or alias.name
                    assert alias.name == name and name not in found, ast.unparse(stmt)
                    found[name] = stmt.module
    return found


def _exports(package: str) -> list[str]:
    return list(importlib.import_module(package).__all__)


def _submodule_names(package: str) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(importlib.import_module(package).__path__)}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_is_one_object_and_not_a_module(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, package
    assert len(set(module.__all__)) == len(module.__all__), package
    for name in module.__all__:
        first = getattr(module, name)
        assert not isinstance(first, types.ModuleType), f"{package}.{name} is a module"
        assert getattr(module, name) is first, f"{package}.{name} changes between accesses"
        namespace: dict[str, object] = {}
        exec(f"from {package} import {name}", namespace)
        assert namespace[name] is first, f"from {package} import {name} gives another object"
        assert name in dir(module), f"{name} missing from dir({package})"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_submodule_has_the_name_of_an_export(package: str) -> None:
    clashes = _submodule_names(package) & set(_exports(package))
    assert clashes == EAGER_NAME_CLASHES.get(package, set())
    # harmless only where the __init__ binds the export itself, right after importing the submodule
    assert not clashes & set(_lazy_table(_init_source(package)) or ())


_SHADOW_CHECK = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys, types

    import workbench

    order, packages = sys.argv[1], json.loads(sys.argv[2])
    problems = []
    eager = {}


    def import_everything():
        for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


    def exports():
        seen = {}
        for package in packages:
            module = importlib.import_module(package)
            for name in module.__all__:
                value = getattr(module, name)
                namespace = {}
                exec(f"from {package} import {name}", namespace)
                if isinstance(value, types.ModuleType) or namespace[name] is not value:
                    problems.append(f"{package}.{name}: {value!r} / {namespace[name]!r}")
                seen[f"{package}.{name}"] = value
        return seen


    if order == "submodules-first":
        import_everything()
        exports()
    else:
        before = exports()
        import_everything()
        after = exports()
        problems += [key for key in before if after[key] is not before[key]]
    print(json.dumps(problems))
    """
)


@pytest.mark.parametrize("order", ["exports-first", "submodules-first"])
@pytest.mark.slow
def test_importing_every_submodule_shadows_no_export(order: str) -> None:
    """In a fresh interpreter: exports stay the same non-module objects whatever is imported when."""
    done = subprocess.run(
        [sys.executable, "-c", _SHADOW_CHECK, order, json.dumps(PACKAGES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_type_checking_imports_match_the_lazy_table(package: str) -> None:
    tree = _init_source(package)
    table = _lazy_table(tree)
    if table is None:  # eager package: its real imports are what static tools read
        assert not _type_checking_imports(tree), package
        return
    assert _type_checking_imports(tree) == table
    module = importlib.import_module(package)
    assert set(table) <= set(module.__all__)
    for name, submodule in table.items():
        assert getattr(importlib.import_module(f"{package}.{submodule}"), name) is getattr(module, name)


def test_attach_caches_the_export_and_rejects_unknown_names() -> None:
    package = types.ModuleType("workbench_lazy_probe")
    package.__path__ = []  # a package, so that attach can name submodules of it
    sys.modules[package.__name__] = package
    sys.modules[f"{package.__name__}.impl"] = impl = types.ModuleType(f"{package.__name__}.impl")
    impl.value = object()
    try:
        getattr_, dir_, all_ = attach(package.__name__, {"value": "impl"})
        package.__getattr__ = getattr_
        assert all_ == ["value"] and "value" in dir_()
        assert "value" not in vars(package)
        assert package.value is impl.value and vars(package)["value"] is impl.value
        with pytest.raises(AttributeError, match="no attribute 'missing'"):
            package.missing  # noqa: B018
        assert not hasattr(package, "missing")
        with pytest.raises(ValueError, match="shadow"):
            attach(package.__name__, {"impl": "impl"})
    finally:
        del sys.modules[package.__name__], sys.modules[f"{package.__name__}.impl"]


@pytest.mark.parametrize("package", TORCH_FREE)
def test_package_import_does_not_import_torch(package: str) -> None:
    code = f"import sys, {package}; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"import {package} imports {done.stdout.strip()}"


def test_cli_help_and_info_do_not_import_torch(tmp_path) -> None:
    """``workbench --help`` and ``workbench info`` (storage only) start without torch."""
    from workbench.cache import extract

    cache = extract(np.zeros((4, 8, 8, 3), np.uint8), "pixels", out=tmp_path, name="z", progress=False)
    code = (
        "import sys, contextlib, io\n"
        "from workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    assert main(['info', {str(cache.path)!r}]) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_open_cache_imports_neither_torch_nor_pandas(tmp_path) -> None:
    """``import workbench; open_cache(...)`` stays light: pandas (~1 s) loads only when meta is read."""
    from workbench.cache import extract

    cache = extract(np.zeros((4, 8, 8, 3), np.uint8), "pixels", out=tmp_path, name="z", progress=False)
    code = (
        "import sys, workbench\n"
        f"c = workbench.open_cache({str(cache.path)!r})\n"
        "assert c.features.shape[0] == 4\n"
        "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))\n"
        "c.meta\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]
