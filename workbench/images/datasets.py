"""Real image datasets that install offline: Fashion-MNIST (Debian) and scikit-learn's digits.

Fashion-MNIST (Xiao et al. 2017, MIT license) is read from the IDX files of Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/``), from
``$WORKBENCH_FASHION_MNIST``, or downloaded with torchvision when neither exists and a network is
available.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes into an array of its stated shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise ValueError(f"{path}: truncated IDX file ({len(data) - offset} of {expected} bytes)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def fashion_mnist_dir() -> Path | None:
    """The folder holding the Fashion-MNIST IDX files, or None when not installed."""
    for cand in (os.environ.get("WORKBENCH_FASHION_MNIST"), _DEBIAN_DIR):
        if cand and all((Path(cand) / f).is_file() for pair in _FILES.values() for f in pair):
            return Path(cand)
    return None


def load_fashion_mnist(
    split: str = "train", download_root: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images (``N x 28 x 28`` uint8) and labels (``N`` int64) of ``split``.

    ``split`` is ``"train"`` (60,000) or ``"test"`` (10,000). Class names: ``FASHION_MNIST_CLASSES``.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = fashion_mnist_dir()
    if folder is not None:
        img_file, lab_file = _FILES[split]
        return read_idx(folder / img_file), read_idx(folder / lab_file).astype(np.int64)
    try:
        from torchvision.datasets import FashionMNIST

        root = Path(download_root or Path.home() / ".cache" / "workbench" / "datasets")
        ds = FashionMNIST(str(root), train=split == "train", download=True)
        return ds.data.numpy().astype(np.uint8), ds.targets.numpy().astype(np.int64)
    except Exception as exc:
        raise FileNotFoundError(
            "Fashion-MNIST not found: install Debian's package (`apt-get install dataset-fashion-mnist`, "
            f"files in {_DEBIAN_DIR}) or set WORKBENCH_FASHION_MNIST to a folder with the four IDX .gz "
            f"files (download failed: {exc})"
        ) from exc


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: ``1797 x 8 x 8`` uint8 images (0..255) and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, d.target.astype(np.int64)
