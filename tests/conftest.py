"""Shared fixtures: real images (Fashion-MNIST from Debian's package, scikit-learn digits).

Test lanes: the markers ``slow``, ``peers`` and ``browser`` (pyproject.toml). Plain ``pytest`` runs
the fast lane through the ``-m`` of ``addopts``; a later ``-m`` replaces it (``-m slow``,
``-m ''`` for every lane). :func:`pytest_configure` below drops that default when the command line
names test files or test ids, so that ``pytest tests/test_browser.py`` runs what it names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.images.datasets import FASHION_MNIST_CLASSES, load_digits_images, load_fashion_mnist

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR / "plugins"))


def _default_markexpr(config: pytest.Config) -> str | None:
    """The ``-m`` expression of ``addopts`` in pyproject.toml (the fast lane), if any."""
    args = list(config.getini("addopts"))
    found = None
    for i, arg in enumerate(args):
        if arg == "-m" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--markexpr="):
            found = arg.split("=", 1)[1]
    return found


def _only_files_or_ids(config: pytest.Config) -> bool:
    """True when every command-line argument is a test file or a test id (not a folder)."""
    source = getattr(config, "args_source", None)  # pytest >= 7.2; testpaths are folders anyway
    if (source is not None and source != pytest.Config.ArgsSource.ARGS) or not config.args:
        return False
    base = config.invocation_params.dir
    return all("::" in arg or (base / arg).is_file() for arg in config.args)


def pytest_configure(config: pytest.Config) -> None:
    default = _default_markexpr(config)
    if (
        default
        and config.option.markexpr == default
        and default not in config.invocation_params.args  # not given again by hand
        and _only_files_or_ids(config)
    ):
        config.option.markexpr = ""  # `pytest tests/test_x.py[::test]` runs every test it names


def pytest_report_header(config: pytest.Config) -> str:
    expr = config.option.markexpr
    return f"test lane: -m {expr!r}" if expr else "test lane: all lanes (no -m filter)"


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits: 1797 x 8 x 8 uint8 and labels."""
    return load_digits_images()


@pytest.fixture(scope="session")
def fmnist_test() -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST test split: 10,000 x 28 x 28 uint8 and labels."""
    return load_fashion_mnist("test")


@pytest.fixture()
def class_folder(tmp_path: Path, fmnist_test) -> Path:
    """60 Fashion-MNIST PNGs in three class folders (20 each)."""
    images, labels = fmnist_test
    root = tmp_path / "classes"
    for cls in (0, 1, 7):
        folder = root / FASHION_MNIST_CLASSES[cls].replace("/", "-")
        folder.mkdir(parents=True)
        for j, idx in enumerate(np.flatnonzero(labels == cls)[:20]):
            Image.fromarray(images[idx]).save(folder / f"{j:03d}.png")
    return root


TINY_CLIP = "wb-test-tiny-vit"


@pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory) -> str:
    """A tiny ViT CLIP registered with open_clip (the real ViT-L-14 is too slow to build in tests)."""
    import open_clip

    cfg = {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 48, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    path = tmp_path_factory.mktemp("clipcfg") / f"{TINY_CLIP}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return TINY_CLIP
