"""A user's own data, as folders: Fashion-MNIST class folders of real images, a held-out test set,
the training set and two models (one blurry, one that copies its training images), written as
PNGs. Shared by the tests of ``workbench evaluate`` and the browser test of its dashboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from workbench.images.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist


def write_class_folders(root: Path, images: np.ndarray, labels: np.ndarray, blur: float = 0.0) -> Path:
    """PNGs of ``images`` (n x 28 x 28 uint8) in one folder per class under ``root``, blurred with a
    Gaussian of ``blur`` pixels when given."""
    for i, (im, lab) in enumerate(zip(images, labels)):
        folder = root / FASHION_MNIST_CLASSES[int(lab)].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(im)
        if blur:
            img = img.filter(ImageFilter.GaussianBlur(blur))
        img.save(folder / f"{i:05d}.png")
    return root


def fashion_folders(root: Path, per_set: int, n_train: int | None = None, seed: int = 0) -> dict[str, Path]:
    """Class folders under ``root``: ``real``, ``test`` (held out) and ``model_blurry`` (other test
    images blurred by 1.2 px), ``per_set`` images each; ``train`` (the first ``n_train`` training
    images, default ``2 * per_set``); ``model_copies`` (``per_set`` of those training images plus
    Gaussian noise of 8 grey levels, seeded); ``model_blurrier`` (the blurry images at 2.5 px).
    Returns ``{name: folder}``."""
    n, n_train = per_set, n_train or 2 * per_set
    train_x, train_y = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    idx = rng.choice(n_train, n, replace=False)
    noisy = np.clip(train_x[idx].astype(np.float64) + rng.normal(0, 8, (n, 28, 28)), 0, 255).astype(np.uint8)
    return {
        "real": write_class_folders(root / "real", test_x[:n], test_y[:n]),
        "test": write_class_folders(root / "test", test_x[n : 2 * n], test_y[n : 2 * n]),
        "model_blurry": write_class_folders(root / "model_blurry", test_x[2 * n : 3 * n], test_y[2 * n : 3 * n], 1.2),
        "model_copies": write_class_folders(root / "model_copies", noisy, train_y[idx]),
        "train": write_class_folders(root / "train", train_x[:n_train], train_y[:n_train]),
        "model_blurrier": write_class_folders(
            root / "model_blurrier", test_x[2 * n : 3 * n], test_y[2 * n : 3 * n], 2.5
        ),
    }
