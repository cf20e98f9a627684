"""The demo's zoo of "generated" sets, each with one known flaw, built from Fashion-MNIST.

Every function takes ``N x 28 x 28`` uint8 images and a seed (or numpy Generator) and returns
``N x 28 x 28`` uint8 images; nothing here trains a model (the VAE is in
:mod:`workbench.demo.models`).

* :func:`pick_ideal` — held-out real images: what a perfect generator would produce.
* :func:`make_memorizer` — training images, lightly jittered: a model that copies its training set.
* :func:`make_mode_dropper` — real held-out images of all but a few classes: missing modes.
* :func:`make_blurry` — real held-out images, exactly balanced classes, Gaussian blur + noise.
* :func:`histogram_matched_indices` — a Top-1 class-histogram-matched resample of a weak model's
  pool (Kynkäänniemi et al., ICLR 2023), via
  :func:`workbench.analysis.topn_matching.resample_to_histogram`.

:func:`save_zoo_npz` writes a set as ADM-style ``.npz``: ``arr_0`` ``N x 28 x 28 x 1`` uint8,
``arr_1`` ``N`` int64 labels when known, plus named extra arrays (``train_index``, ``predicted``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from ..cache.atomic import save_npz_atomic
from ..metrics.validation import check_seed


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise ValueError(f"{name} must be N x H x W uint8 grayscale images; got shape {arr.shape}, dtype {arr.dtype}")
    return arr


def _check_count(n: int, available: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of images, got {n!r}")
    if n > available:
        raise ValueError(f"n={n} exceeds the {available} {what} available; use a smaller n or more images")
    return int(n)


def pick_ideal(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int | np.random.Generator = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images drawn uniformly without replacement -> (images, labels, indices into ``images``)."""
    images = _check_images(images, "images")
    n = _check_count(n, images.shape[0], "held-out images")
    idx = np.sort(check_seed(seed).choice(images.shape[0], size=n, replace=False))
    return images[idx].copy(), np.asarray(labels)[idx].astype(np.int64), idx


def make_memorizer(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    shift_prob: float = 0.1,
    noise: float = 4.0,
    flip_prob: float = 0.05,
    brightness_prob: float = 0.2,
    brightness: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Near-copies of ``n`` distinct training images -> (images, labels, training indices).

    With probability ``shift_prob`` a copy is shifted by one pixel in a random direction among the
    8 neighbours (zero fill); every copy gets Gaussian noise of standard deviation ``noise`` grey levels, is mirrored left-right with
    probability ``flip_prob`` and has its intensity scaled by ``U(1 - brightness, 1 + brightness)``
    with probability ``brightness_prob``; values are rounded and clipped to [0, 255].
    """
    train_images = _check_images(train_images, "train_images")
    n = _check_count(n, train_images.shape[0], "training images")
    rng = check_seed(seed)
    idx = np.sort(rng.choice(train_images.shape[0], size=n, replace=False))
    src = train_images[idx].astype(np.float32)
    out = np.zeros_like(src)
    moves = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])
    shift = moves[rng.integers(0, len(moves), size=n)] * (rng.random(n) < shift_prob)[:, None]
    h, w = src.shape[1:]
    for i, (dy, dx) in enumerate(shift):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, yd, xd] = src[i, ys, xs]
    out += rng.normal(0.0, noise, size=out.shape).astype(np.float32)
    flip = rng.random(n) < flip_prob
    out[flip] = out[flip, :, ::-1]
    scale = np.where(rng.random(n) < brightness_prob, rng.uniform(1 - brightness, 1 + brightness, n), 1.0)
    out *= scale[:, None, None].astype(np.float32)
    images = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return images, np.asarray(train_labels)[idx].astype(np.int64), idx


def make_mode_dropper(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    dropped: list[int] | np.ndarray,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images drawn uniformly without replacement among those whose label is not in ``dropped``."""
    images = _check_images(images, "images")
    labels = np.asarray(labels)
    keep = np.flatnonzero(~np.isin(labels, np.asarray(dropped)))
    n = _check_count(n, keep.size, "images of the kept classes")
    idx = np.sort(check_seed(seed).choice(keep, size=n, replace=False))
    return images[idx].copy(), labels[idx].astype(np.int64), idx


def make_blurry(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    num_classes: int = 10,
    sigma: float = 1.2,
    noise: float = 12.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly balanced classes (``n / num_classes`` each; the remainder goes to the first classes),
    each image Gaussian-blurred (``sigma`` pixels) plus Gaussian noise (``noise`` grey levels)."""
    images = _check_images(images, "images")
    labels = np.asarray(labels)
    rng = check_seed(seed)
    n = _check_count(n, images.shape[0], "images")
    per_class = np.full(num_classes, n // num_classes)
    per_class[: n % num_classes] += 1
    parts = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if per_class[c] > members.size:
            raise ValueError(
                f"class {c} has {members.size} images but the blurry set needs {per_class[c]}; use a smaller n"
            )
        parts.append(rng.choice(members, size=int(per_class[c]), replace=False))
    idx = np.sort(np.concatenate(parts))
    src = images[idx].astype(np.float32)
    blurred = gaussian_filter(src, sigma=(0, sigma, sigma), mode="constant")
    blurred += rng.normal(0.0, noise, size=blurred.shape).astype(np.float32)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8), labels[idx].astype(np.int64), idx


def histogram_matched_indices(
    reference_logits: np.ndarray, pool_logits: np.ndarray, n: int, seed: int = 0
) -> np.ndarray:
    """Sorted indices into the pool whose Top-1 histogram (under the classifier) matches the reference's.

    Top-1 closed form of Kynkäänniemi et al. (ICLR 2023): weight ``w_i = p_ref(c_i) / p_pool(c_i)``
    for the pool sample's predicted class ``c_i``, so class ``c`` gets ``n * p_ref(c)`` samples
    (largest-remainder rounding). They are the class's *first* pool samples (``sampling="prefix"``
    of :func:`workbench.analysis.topn_matching.resample_to_histogram`, which this calls), so the
    matched set shares every image the matching did not swap with the pool's first ``n`` (the
    ``vae`` set) and the two sets' FDs differ by the matching, not by draw noise. A class the pool
    has too few of is topped up by draws with replacement (``seed``).
    """
    from ..analysis.topn_matching import resample_to_histogram

    return resample_to_histogram(
        reference_logits, pool_logits, 1, size=int(n), sampling="prefix", replace=True, seed=int(seed)
    )


def save_zoo_npz(path: str | Path, images: np.ndarray, labels: np.ndarray | None = None, **extra: np.ndarray) -> None:
    """Write ``arr_0`` (``N x H x W x 1`` uint8), ``arr_1`` (labels, when given) and ``extra`` atomically, uncompressed."""
    images = _check_images(images, "images")
    arrays: dict[str, np.ndarray] = {"arr_0": images[..., None]}
    if labels is not None:
        arrays["arr_1"] = np.asarray(labels, dtype=np.int64)
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    save_npz_atomic(Path(path), **arrays)
