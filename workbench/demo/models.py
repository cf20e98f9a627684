"""The three small networks trained by the demo build, and their seeded training loops.

* :class:`DemoClassifierNet` — a two-block CNN trained on the 10 Fashion-MNIST labels. It plays
  the role Inception-v3 plays for FID: supervised penultimate features (128-d, the first fully
  connected layer *before* its ReLU, so no unit is dead and the feature covariance has full rank)
  and 10 logits.
* :class:`DemoAutoencoderNet` — a denoising convolutional autoencoder trained without labels
  (Vincent et al., ICML 2008); its 64-d bottleneck plays the self-supervised extractor (DINOv2).
* :class:`DemoVAENet` — the fully connected VAE of Kingma & Welling (ICLR 2014, appendix C:
  one hidden layer, Bernoulli decoder), made class-conditional (Sohn et al., NeurIPS 2015): a
  deliberately weak generative model whose samples fill the ``vae`` and ``hist-matched`` sets.

Inputs of the two extractor networks are ``B x 1 x 28 x 28`` float32 standardised with the
Fashion-MNIST training-split pixel statistics (:data:`FMNIST_MEAN`, :data:`FMNIST_STD`, pixel
values in [0, 1]); the VAE works on [0, 1] pixels directly.

Training is deterministic for a given seed, data and torch thread count: weights are initialised
and batches shuffled from a forked, seeded torch RNG, so the caller's global RNG is untouched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 28
# Mean and standard deviation of Fashion-MNIST training-split pixels scaled to [0, 1].
FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530

CLASSIFIER_FEATURE_DIM = 128
SSL_FEATURE_DIM = 64
VAE_LATENT_DIM = 16


class DemoClassifierNet(nn.Module):
    """conv4x4/2(32)-ReLU, conv4x4/2(64)-ReLU, fc(3136 -> 128), ReLU, fc(128 -> K).

    Strided convolutions instead of conv + max-pool: about 5x cheaper to train on a CPU for
    a similar accuracy (~90% on the test split after 3 epochs).
    """

    def __init__(self, num_classes: int = 10, feature_dim: int = CLASSIFIER_FEATURE_DIM) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc1 = nn.Linear(64 * 7 * 7, feature_dim)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``B x 1 x 28 x 28`` standardised -> (features ``B x 128`` pre-ReLU, logits ``B x K``)."""
        feats = self.fc1(self.conv(x).flatten(1))
        return feats, self.fc2(F.relu(feats))


class DemoAutoencoderNet(nn.Module):
    """Encoder conv4x4/2(32)-ReLU, conv4x4/2(64)-ReLU, fc(3136 -> 64); mirrored decoder to 28 x 28 logits."""

    def __init__(self, feature_dim: int = SSL_FEATURE_DIM) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, feature_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(feature_dim, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` standardised -> (bottleneck ``B x 64``, reconstruction logits ``B x 1 x 28 x 28``)."""
        code = self.encoder(x)
        return code, self.decoder(code)


class DemoVAENet(nn.Module):
    """Class-conditional MLP VAE (Kingma & Welling 2014, conditioned as in Sohn et al. 2015).

    Encoder ``[x, onehot(y)]`` (784 + 10) -> 512 -> (mu, log sigma^2) in R^16; decoder
    ``[z, onehot(y)]`` -> 512 -> 784 Bernoulli logits. Sampling asks for a class, as class-conditional
    ImageNet generators do, so the demo's generated sets have known, exactly balanced classes.
    """

    def __init__(self, latent_dim: int = VAE_LATENT_DIM, hidden: int = 512, num_classes: int = 10) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.enc = nn.Sequential(nn.Linear(IMAGE_SIZE * IMAGE_SIZE + num_classes, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.dec = nn.Sequential(
            nn.Linear(latent_dim + num_classes, hidden), nn.ReLU(), nn.Linear(hidden, IMAGE_SIZE * IMAGE_SIZE)
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` in [0, 1], ``B x 1 x 28 x 28``; ``y`` ``B`` int64 classes -> (decoder logits ``B x 784``, mu, logvar)."""
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)
        h = self.enc(torch.cat([x.flatten(1), onehot], dim=1))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(torch.cat([z, onehot], dim=1)), mu, logvar

    @staticmethod
    def balanced_labels(n: int, num_classes: int = 10) -> np.ndarray:
        """``n`` int64 classes ``0, 1, ..., K-1, 0, 1, ...``: every prefix is as balanced as it can be."""
        return np.arange(n, dtype=np.int64) % num_classes

    @torch.inference_mode()
    def sample(self, labels: np.ndarray, seed: int, batch_size: int = 4096) -> np.ndarray:
        """Images ``n x 28 x 28`` uint8 of the requested ``labels`` (``n`` ints in ``[0, K)``):
        decoder means ``sigmoid(dec(z, y))``, ``z ~ N(0, I)`` seeded."""
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if y.ndim != 1 or (y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes)):
            raise ValueError(
                f"labels must be a 1-D array of classes in [0, {self.num_classes}); got shape {tuple(y.shape)}"
            )
        gen = torch.Generator().manual_seed(int(seed))
        n = y.shape[0]
        out = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        self.eval()
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            z = torch.randn(stop - start, self.latent_dim, generator=gen)
            onehot = F.one_hot(y[start:stop], self.num_classes).to(z.dtype)
            probs = torch.sigmoid(self.dec(torch.cat([z, onehot], dim=1))).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
            out[start:stop] = torch.round(probs * 255.0).clamp_(0, 255).to(torch.uint8).numpy()
        return out


@dataclass
class TrainingLog:
    """What a training run did: epochs, steps, wall time and the mean loss of each epoch."""

    epochs: int
    steps: int = 0
    seconds: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)


def to_unit_tensor(images: np.ndarray) -> torch.Tensor:
    """``N x 28 x 28`` uint8 -> ``N x 1 x 28 x 28`` float32 in [0, 1]."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be N x H x W uint8 (grayscale); got shape {images.shape}, dtype {images.dtype}")
    return torch.from_numpy(np.array(images, copy=True)).unsqueeze(1).float().div_(255.0)


def standardise(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> ``(x - FMNIST_MEAN) / FMNIST_STD``."""
    return (x01 - FMNIST_MEAN) / FMNIST_STD


def _fit(
    model: nn.Module,
    n: int,
    step_loss: Callable[[torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    log_every: Callable[[str], None] | None,
    name: str,
) -> TrainingLog:
    """Adam on mini-batches of a seeded permutation; ``step_loss(indices) -> scalar loss``."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    log = TrainingLog(epochs=epochs)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = step_loss(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
            log.steps += 1
        log.epoch_losses.append(total / max(count, 1))
        if log_every:
            log_every(
                f"{name}: epoch {epoch + 1}/{epochs} loss {log.epoch_losses[-1]:.4f} ({time.perf_counter() - t0:.1f} s)"
            )
    model.eval()
    log.seconds = time.perf_counter() - t0
    return log


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    num_classes: int = 10,
    log: Callable[[str], None] | None = None,
) -> tuple[DemoClassifierNet, TrainingLog]:
    """Train :class:`DemoClassifierNet` with cross-entropy and Adam on ``N x 28 x 28`` uint8 images."""
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if labels_t.ndim != 1 or labels_t.shape[0] != images.shape[0]:
        raise ValueError(f"labels must have one entry per image ({images.shape[0]}); got shape {tuple(labels_t.shape)}")
    x = standardise(to_unit_tensor(images))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DemoClassifierNet(num_classes=num_classes)

        def loss(idx: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(net(x[idx])[1], labels_t[idx])

        out = _fit(
            net,
            x.shape[0],
            loss,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            log_every=log,
            name="demo-classifier",
        )
    return net, out


def train_autoencoder(
    images: np.ndarray,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    noise: float = 0.3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[DemoAutoencoderNet, TrainingLog]:
    """Train the denoising autoencoder: input ``standardise(x) + noise * N(0, 1)``, loss BCE(recon, x).

    No labels are used. ``noise`` is in standardised units (0.3 ~ 27 grey levels).
    """
    x01 = to_unit_tensor(images)
    x = standardise(x01)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DemoAutoencoderNet()

        def loss(idx: torch.Tensor) -> torch.Tensor:
            xb = x[idx]
            _, recon = net(xb + noise * torch.randn_like(xb))
            return F.binary_cross_entropy_with_logits(recon, x01[idx], reduction="mean")

        out = _fit(
            net,
            x.shape[0],
            loss,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            log_every=log,
            name="demo-ssl",
        )
    return net, out


def train_vae(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[DemoVAENet, TrainingLog]:
    """Train :class:`DemoVAENet` on ``images`` and their class ``labels`` by maximising the ELBO
    (loss per image, in nats).

    ``loss = BCE_sum(dec(z, y), x) + KL(N(mu, sigma^2) || N(0, I))``, with
    ``KL = -1/2 sum(1 + logvar - mu^2 - exp(logvar))`` (Kingma & Welling 2014, eq. 10); the
    [0, 1] grey levels are used as Bernoulli targets (the usual continuous relaxation).
    """
    x01 = to_unit_tensor(images)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if y.shape != (x01.shape[0],):
        raise ValueError(f"labels must hold one class per image ({x01.shape[0]}); got shape {tuple(y.shape)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DemoVAENet()

        def loss(idx: torch.Tensor) -> torch.Tensor:
            xb = x01[idx]
            logits, mu, logvar = net(xb, y[idx])
            rec = F.binary_cross_entropy_with_logits(logits, xb.flatten(1), reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return (rec + kl) / xb.shape[0]

        out = _fit(
            net, x01.shape[0], loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, log_every=log, name="vae"
        )
    return net, out


@torch.inference_mode()
def classify(net: DemoClassifierNet, images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Logits ``N x K`` float32 of ``N x 28 x 28`` uint8 images (the same inputs the extractor sees)."""
    net.eval()
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        chunks.append(net(standardise(to_unit_tensor(images[start : start + batch_size])))[1].numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, net.fc2.out_features), np.float32)


def accuracy(net: DemoClassifierNet, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in [0, 1] of ``net`` on ``images`` with true ``labels``."""
    pred = classify(net, images).argmax(axis=1)
    return float(np.mean(pred == np.asarray(labels)))


def parameter_count(net: nn.Module) -> int:
    return int(sum(math.prod(p.shape) for p in net.parameters()))
