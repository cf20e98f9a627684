"""Shared fixtures: real images (Fashion-MNIST from Debian's package, scikit-learn digits)."""

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
