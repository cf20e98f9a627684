"""Names, sizes and hyper-parameters of the demo workspace: :class:`DemoConfig` and the zoo's flaws."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..workspace.index import WORKSPACE_FILE  # noqa: F401  (re-exported: the demo's index file)
from .extractors import CLASSIFIER_NAME, SSL_NAME

WORKSPACE_FORMAT = "workbench-demo/1"
VAE_NAME = "vae"
# Bump when a generator or a training loop changes so that old outputs are not reused.
CODE_VERSION = 2

EXTRACTORS = ("pixels", CLASSIFIER_NAME, SSL_NAME)
GENERATED_SETS = ("ideal", "memorizer", "mode-dropper", "blurry", "vae", "hist-matched")

# Memorizer jitter and blurry degradation (see workbench.demo.zoo). A 1-px shift of every copy
# would move FD more than a missing class does (Fashion-MNIST items are centred): 10% are shifted.
MEMORIZER_JITTER = {"shift_prob": 0.1, "noise": 4.0, "flip_prob": 0.05, "brightness_prob": 0.2, "brightness": 0.1}
BLUR = {"sigma": 1.2, "noise": 12.0}

FLAWS = {
    "ideal": "none: real held-out training-split images no model has seen (a perfect generator)",
    "memorizer": "copies training images: noise of 4 grey levels; 10% shifted by 1 px, 5% mirrored, "
    "20% brightness x U(0.9, 1.1)",
    "mode-dropper": "real held-out images, but {k} of the 10 classes are missing: {names}",
    "blurry": "perfect class balance, but every image is blurred (Gaussian, sigma 1.2 px) and noisy (12 grey levels)",
    "vae": "a weak learned model: samples of a small class-conditional MLP VAE (Kingma & Welling 2014) trained "
    "in the build, asked for every class equally often",
    "hist-matched": "the VAE's pool resampled so its Top-1 class histogram under demo-classifier matches the "
    "reference's (Kynkaenniemi et al. 2023), taking each predicted class's first pool samples: the vae set with "
    "some images swapped for other VAE samples; better classifier FD, true classes less balanced than before",
    "vae-pool": "the pool hist-matched is drawn from: {n} VAE samples, classes exactly balanced (its first {m} are "
    "the vae set)",
}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and hyper-parameters of the demo build (``DemoConfig()`` is the full demo).

    Attributes:
        n_train: training-set size (images of the train split not held out; at most 60,000 - n_heldout).
        n_heldout: held-out train-split images that ideal / mode-dropper / blurry are drawn from.
        n_reference: reference images (the first ``n_reference`` of a seeded permutation of the
            test split; all 10,000 by default).
        n_per_set: images in each generated set.
        n_pool: VAE samples in the pool that ``hist-matched`` is drawn from.
        n_dropped: classes missing from ``mode-dropper``.
        classifier_epochs, ssl_epochs, vae_epochs: training epochs.
        batch_size: training mini-batch size.
        thumbnails: thumbnail side (px) of every cache but the training set's and the pool's.
        train_thumbnails: thumbnail side of the training-set and pool caches (28 = native size,
            1/5 of the disk of 64 px for the 50,000 images).
        threads: torch and BLAS threads while building (training, extraction, FD).
        extract_batch_size: images per extractor forward pass.
    """

    n_train: int = 50_000
    n_heldout: int = 10_000
    n_reference: int = 10_000
    n_per_set: int = 5_000
    n_pool: int = 20_000
    n_dropped: int = 3
    classifier_epochs: int = 3
    ssl_epochs: int = 3
    vae_epochs: int = 10
    batch_size: int = 128
    thumbnails: int = 64
    train_thumbnails: int = 28
    threads: int = 1
    extract_batch_size: int = 256

    @classmethod
    def small(cls, **changes: Any) -> DemoConfig:
        """A reduced demo for tests and a quick look (113-118 s of CPU measured, the domain included):
        20,000 training images, 500 per set.

        The models keep most of their training (20,000 images, 2-10 epochs) because the demo's
        phenomena need trained models: with 2,000 training images and 1-2 epochs the VAE is so poor
        that the classifier's Top-1 class of a sample tracks its quality, and histogram matching
        then improves every FD alike instead of gaming the classifier's.
        """
        base = cls(
            n_train=20_000,
            n_heldout=1_000,
            n_reference=1_000,
            n_per_set=500,
            n_pool=2_000,
            classifier_epochs=3,
            ssl_epochs=2,
            vae_epochs=10,
            thumbnails=28,
            train_thumbnails=28,  # the memorization views show training neighbours
        )
        return replace(base, **changes)

    def validate(self) -> DemoConfig:
        for name in (
            "n_train",
            "n_heldout",
            "n_reference",
            "n_per_set",
            "n_pool",
            "classifier_epochs",
            "ssl_epochs",
            "vae_epochs",
            "batch_size",
            "threads",
            "extract_batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DemoConfig.{name} must be a positive integer, got {value!r}")
        if self.n_train + self.n_heldout > 60_000:
            raise ValueError(
                f"n_train + n_heldout must be <= 60,000 (the train split); got {self.n_train} + {self.n_heldout}"
            )
        if self.n_reference > 10_000:
            raise ValueError(f"n_reference must be <= 10,000 (the test split); got {self.n_reference}")
        if not 0 <= self.n_dropped < 10:
            raise ValueError(f"n_dropped must be in 0..9, got {self.n_dropped}")
        if self.n_per_set > self.n_pool:
            raise ValueError(f"n_pool ({self.n_pool}) must be >= n_per_set ({self.n_per_set})")
        if self.n_per_set > self.n_train or self.n_per_set > self.n_heldout * (10 - self.n_dropped) / 10 * 0.9:
            raise ValueError(
                f"n_per_set={self.n_per_set} is too large for n_train={self.n_train} / n_heldout={self.n_heldout}"
                " (mode-dropper needs n_per_set held-out images of the kept classes)"
            )
        for name in ("thumbnails", "train_thumbnails"):
            if getattr(self, name) < 0:
                raise ValueError(f"DemoConfig.{name} must be >= 0 pixels, got {getattr(self, name)}")
        return self
