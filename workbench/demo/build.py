"""``workbench demo``: build a complete, real demo workspace offline from Fashion-MNIST.

Layout of the workspace ``out`` (default ``workspace/demo``)::

    models/   demo-classifier.safetensors, demo-ssl.safetensors, demo-foreign.safetensors,
              vae.safetensors (+ .json: key, sha256, training log, test accuracy)
    zoo/      splits.npz (indices of every split into Fashion-MNIST), <set>.npz (arr_0 images
              N x 28 x 28 x 1 uint8, arr_1 labels when known), zoo.json (flaw of each set)
    caches/   one embedding cache per (set, extractor), named by :func:`workbench.cache.extract`
    workspace.json   the index: every cache path by (set, extractor) with its role, the models,
              FD of every set to the reference under every extractor, and the step timings
    domain/   a second workspace (own workspace.json, zoo/, caches/): the five classes demo-foreign
              never saw, a VAE pool of them and its Top-N-matched resamples
              (:mod:`workbench.demo.domain`)

Data splits (seeded permutation of the 60,000-image train split):

* ``reference`` — the Fashion-MNIST **test** split (10,000), the real set every metric compares to;
* ``heldout`` — 10,000 train-split images that no model ever sees; ``ideal``, ``mode-dropper``
  and ``blurry`` are drawn from it (the three draws are independent, so they may share images);
* ``train`` — the other 50,000 train-split images: the training set of the demo classifier, the
  autoencoder and the VAE, the set ``memorizer`` copies, and the ``train`` role of the
  memorization analyses. (It is 50,000, not 60,000, so that ``ideal`` is real *and* unseen.)

Reuse: every step has a key (a digest of its inputs: seed, sizes, hyper-parameters, the
Fashion-MNIST bytes, the SHA-256 of the weights it depends on) recorded next to its output with
the output's SHA-256; a second run recomputes the keys, checks the hashes and skips the step when
both match. Caches are reused by :func:`~workbench.cache.extract`'s own key (content hashes of
every image + extractor description). Every file is written to a temporary name and renamed, so
an interrupted build (Ctrl-C) leaves only complete files, and re-running continues.

Determinism: the same seed, data, torch version and CPU kernels give bit-identical weights and
sets; training runs with ``DemoConfig.threads`` torch threads (default 1, which is also the
fastest setting on a busy 2-core machine) so the result does not depend on the core count.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import open_cache
from ..cache.atomic import save_npz_atomic, write_json_atomic
from ..extractors import create_extractor
from ..images import ArraySource, NpzSource
from ..images.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
from ..threads import limit_threads
from ..workspace.index import WORKSPACE_FILE, CacheEntry, new_index, read_index, write_index
from . import models as M
from . import zoo as Z
from .config import (
    BLUR,
    CODE_VERSION,
    EXTRACTORS,
    FLAWS,
    GENERATED_SETS,
    MEMORIZER_JITTER,
    VAE_NAME,
    WORKSPACE_FORMAT,
    DemoConfig,
)
from .domain import DOMAIN_DIR, build_domain, foreign_training_set
from .extractors import (
    CLASSIFIER_NAME,
    DOMAIN_CLASSES,
    FOREIGN_CLASSES,
    FOREIGN_NAME,
    SSL_NAME,
    WEIGHT_FILES,
    default_demo_dir,
)
from .steps import (
    StepRecord,
    StepTimer,
    cache_sets,
    digest_arrays,
    digest_json,
    read_json,
    reuse_or_make_set,
    reuse_or_train,
)


@dataclass
class DemoWorkspace:
    """What :func:`build_demo` returns: the workspace folder, its index and the step timings."""

    out: Path
    index: dict[str, Any]
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return float(sum(s.seconds for s in self.steps))

    def cache_path(self, set_name: str, extractor: str) -> Path:
        """Absolute path of the cache of ``set_name`` by ``extractor``."""
        for c in self.index["caches"]:
            if c["set"] == set_name and c["extractor"] == extractor:
                return self.out / c["path"]
        raise KeyError(f"no cache for set {set_name!r} and extractor {extractor!r} in {self.out / WORKSPACE_FILE}")


@dataclass
class _Data:
    train_x: np.ndarray
    train_y: np.ndarray
    heldout_x: np.ndarray
    heldout_y: np.ndarray
    ref_x: np.ndarray
    ref_y: np.ndarray
    key: str
    test_x: np.ndarray
    test_y: np.ndarray


def _load_data(config: DemoConfig, seed: int, zoo_dir: Path) -> _Data:
    tx, ty = load_fashion_mnist("train")
    sx, sy = load_fashion_mnist("test")
    perm = np.random.default_rng([seed, 1]).permutation(tx.shape[0])
    heldout_idx = np.sort(perm[: config.n_heldout])
    train_idx = np.sort(perm[config.n_heldout : config.n_heldout + config.n_train])
    ref_idx = (
        np.arange(sx.shape[0])
        if config.n_reference >= sx.shape[0]
        else np.sort(np.random.default_rng([seed, 2]).permutation(sx.shape[0])[: config.n_reference])
    )
    key = digest_json(
        {
            "fashion-mnist": digest_arrays(tx, ty, sx, sy),
            "seed": seed,
            "n_train": config.n_train,
            "n_heldout": config.n_heldout,
            "n_reference": config.n_reference,
            "code": CODE_VERSION,
        }
    )
    splits = zoo_dir / "splits.npz"
    if read_json(zoo_dir / "splits.json").get("key") != key or not splits.is_file():
        save_npz_atomic(splits, train_index=train_idx, heldout_index=heldout_idx, reference_index=ref_idx)
        write_json_atomic(
            zoo_dir / "splits.json",
            {
                "key": key,
                "train_index": "indices of the training set into the Fashion-MNIST train split",
                "heldout_index": "indices of the held-out images into the Fashion-MNIST train split",
                "reference_index": "indices of the reference set into the Fashion-MNIST test split",
            },
        )
    return _Data(tx[train_idx], ty[train_idx], tx[heldout_idx], ty[heldout_idx], sx[ref_idx], sy[ref_idx], key, sx, sy)


def build_demo(
    out: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    force: bool = False,
    small: bool = False,
    config: DemoConfig | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> DemoWorkspace:
    """Build (or reuse) the demo workspace: trained extractors, the zoo of flawed sets, all caches.

    Args:
        out: workspace folder (default ``workspace/demo``, or ``$WORKBENCH_DEMO_DIR``).
        seed: seeds the splits, the training of the three models and every generated set.
        force: rebuild everything (retrain, regenerate, re-extract) instead of reusing.
        small: use :meth:`DemoConfig.small` (20,000 training images, 500 per set) unless ``config``
            is given.
        config: sizes and hyper-parameters (default :class:`DemoConfig` or its ``small()``).
        progress: show extraction progress bars (stderr).
        log: where step lines go (default: print to stdout).

    Returns:
        :class:`DemoWorkspace` with the folder, the parsed ``workspace.json`` and the step timings.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    cfg = (config or (DemoConfig.small() if small else DemoConfig())).validate()
    say = log or (lambda msg: print(msg, flush=True))
    out = Path(out) if out is not None else default_demo_dir()
    out = out.expanduser().resolve()
    models_dir, zoo_dir, caches_dir = out / "models", out / "zoo", out / "caches"
    for d in (models_dir, zoo_dir, caches_dir):
        d.mkdir(parents=True, exist_ok=True)
    steps = StepTimer(say)
    say(f"[demo] building the demo workspace in {out} (seed {seed}{'' if cfg == DemoConfig() else ', reduced config'})")
    t_start = time.perf_counter()

    with limit_threads(cfg.threads):
        with steps("load Fashion-MNIST + splits") as rec:
            data = _load_data(cfg, seed, zoo_dir)
            rec.note = f"train {len(data.train_x)}, held-out {len(data.heldout_x)}, reference {len(data.ref_x)}"

        models = _build_models(cfg, seed, force, data, models_dir, steps, say)
        zoo_sets = _build_zoo(cfg, seed, force, data, models, models_dir, zoo_dir, steps)
        caches = cache_sets(
            _sources(data, zoo_dir, cfg),
            EXTRACTORS,
            batch_size=cfg.extract_batch_size,
            force=force,
            models_dir=models_dir,
            caches_dir=caches_dir,
            root=out,
            steps=steps,
            progress=progress,
        )
        with steps("remove caches of earlier builds") as rec:
            removed = _prune_stale_caches(caches_dir, out, caches)
            rec.reused = not removed
            rec.note = f"{len(removed)} removed" + (
                f": {', '.join(removed[:3])}{' ...' if len(removed) > 3 else ''}" if removed else ""
            )
        with steps("FD of every set to the reference") as rec:
            fd_table, rec.reused = _fd_table(out, caches, _previous_index(out).get("fd_vs_reference"))
        domain_index = build_domain(
            cfg, seed, force, data.test_x, data.test_y, data.key, models, models_dir, out, steps, progress
        )

    total = time.perf_counter() - t_start
    total_cpu = sum(r.cpu_seconds for r in steps.records)
    extra = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": asdict(cfg),
        "dataset": {
            "name": "Fashion-MNIST (Xiao et al. 2017)",
            "class_names": list(FASHION_MNIST_CLASSES),
            "splits": "zoo/splits.npz",
            "reference": "the test split"
            + ("" if cfg.n_reference >= 10_000 else f" (seeded subset of {cfg.n_reference})"),
            "train": f"{cfg.n_train} train-split images (the demo models' training set)",
            "heldout": f"{cfg.n_heldout} train-split images no model saw (source of ideal, mode-dropper, blurry)",
        },
        "models": {k: {**v, "path": f"models/{v['file']}"} for k, v in models.items()},
        "extractors": {
            "pixels": {"name": "pixels", "weights": "none", "pretrained": False, "plays": "no semantics (baseline)"},
            CLASSIFIER_NAME: {
                "name": CLASSIFIER_NAME,
                "weights": f"models/{WEIGHT_FILES[CLASSIFIER_NAME]}",
                "identity": models[CLASSIFIER_NAME]["identity"],
                "pretrained": False,
                "plays": "Inception (supervised features + logits)",
            },
            SSL_NAME: {
                "name": SSL_NAME,
                "weights": f"models/{WEIGHT_FILES[SSL_NAME]}",
                "identity": models[SSL_NAME]["identity"],
                "pretrained": False,
                "plays": "DINOv2 (features learned without labels)",
            },
        },
        "sets": _set_index(cfg, zoo_sets),
        "fd_vs_reference": fd_table,
        "domain": {
            "path": DOMAIN_DIR,
            "index": f"{DOMAIN_DIR}/{WORKSPACE_FILE}",
            "classes": list(DOMAIN_CLASSES),
            "foreign_classifier": FOREIGN_NAME,
            "foreign_classes": list(FOREIGN_CLASSES),
            "topn_weighted_relative_change": {
                n: r["weighted_relative_change"] for n, r in domain_index["topn_experiment"]["results"].items()
            },
            "description": "the five classes demo-foreign never saw, with their own reference, VAE pool and "
            "Top-N-matched sets; open it with workbench.demo.find_demo_domain()",
        },
        "steps": [asdict(s) for s in steps.records],
        "total_seconds": round(total, 2),
        "total_cpu_seconds": round(total_cpu, 2),
    }
    entries = [CacheEntry(c["set"], c["extractor"], c["role"], out / c["path"], c) for c in caches]
    index = write_index(new_index(out, entries, format=WORKSPACE_FORMAT, extra=extra))
    say(f"[demo] total {total:.1f} s (cpu {total_cpu:.1f} s); index written to {out / WORKSPACE_FILE}")
    return DemoWorkspace(out=out, index=index, steps=steps.records)


def _build_models(
    cfg: DemoConfig, seed: int, force: bool, data: _Data, models_dir: Path, steps: StepTimer, say: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    common = {
        "data": data.key,
        "seed": seed,
        "batch_size": cfg.batch_size,
        "threads": cfg.threads,
        "code": CODE_VERSION,
    }

    def progress(msg: str) -> None:
        say(f"[demo]     {msg}")

    with steps(f"train {CLASSIFIER_NAME}") as rec:

        def train_classifier() -> tuple[torch.nn.Module, M.TrainingLog, dict[str, Any]]:
            net, tlog = M.train_classifier(
                data.train_x,
                data.train_y,
                epochs=cfg.classifier_epochs,
                batch_size=cfg.batch_size,
                seed=seed,
                log=progress,
            )
            return (
                net,
                tlog,
                {
                    "test_accuracy": M.accuracy(net, data.ref_x, data.ref_y),
                    "test_accuracy_on": f"{len(data.ref_x)} Fashion-MNIST test images",
                },
            )

        models[CLASSIFIER_NAME] = reuse_or_train(
            CLASSIFIER_NAME,
            models_dir,
            digest_json({**common, "model": CLASSIFIER_NAME, "epochs": cfg.classifier_epochs}),
            force,
            train_classifier,
            rec,
        )
        rec.note = f"test accuracy {100 * models[CLASSIFIER_NAME]['test_accuracy']:.2f}%"

    with steps(f"train {FOREIGN_NAME} (tops only)") as rec:
        foreign_x, foreign_y = foreign_training_set(data.train_x, data.train_y)

        def train_foreign() -> tuple[torch.nn.Module, M.TrainingLog, dict[str, Any]]:
            net, tlog = M.train_classifier(
                foreign_x,
                foreign_y,
                epochs=cfg.classifier_epochs,
                batch_size=cfg.batch_size,
                seed=seed + 3,
                num_classes=len(FOREIGN_CLASSES),
                log=progress,
            )
            test_x, test_y = foreign_training_set(data.test_x, data.test_y)
            return (
                net,
                tlog,
                {
                    "classes": list(FOREIGN_CLASSES),
                    "training_images": int(len(foreign_x)),
                    "test_accuracy": M.accuracy(net, test_x, test_y),
                    "test_accuracy_on": f"{len(test_x)} Fashion-MNIST test images of its five classes",
                },
            )

        models[FOREIGN_NAME] = reuse_or_train(
            FOREIGN_NAME,
            models_dir,
            digest_json({**common, "model": FOREIGN_NAME, "epochs": cfg.classifier_epochs, "classes": FOREIGN_CLASSES}),
            force,
            train_foreign,
            rec,
        )
        rec.note = f"test accuracy on its 5 classes {100 * models[FOREIGN_NAME]['test_accuracy']:.2f}%"

    with steps(f"train {SSL_NAME} (no labels)") as rec:

        def train_ssl() -> tuple[torch.nn.Module, M.TrainingLog, dict[str, Any]]:
            net, tlog = M.train_autoencoder(
                data.train_x, epochs=cfg.ssl_epochs, batch_size=cfg.batch_size, seed=seed + 1, log=progress
            )
            return net, tlog, {}

        models[SSL_NAME] = reuse_or_train(
            SSL_NAME,
            models_dir,
            digest_json({**common, "model": SSL_NAME, "epochs": cfg.ssl_epochs}),
            force,
            train_ssl,
            rec,
        )

    with steps(f"train {VAE_NAME} (the weak generator)") as rec:

        def train_vae() -> tuple[torch.nn.Module, M.TrainingLog, dict[str, Any]]:
            net, tlog = M.train_vae(
                data.train_x,
                data.train_y,
                epochs=cfg.vae_epochs,
                batch_size=cfg.batch_size,
                seed=seed + 2,
                log=progress,
            )
            return net, tlog, {}

        models[VAE_NAME] = reuse_or_train(
            VAE_NAME,
            models_dir,
            digest_json({**common, "model": VAE_NAME, "epochs": cfg.vae_epochs}),
            force,
            train_vae,
            rec,
        )
    return models


def _load_vae(models_dir: Path) -> M.DemoVAENet:
    from ..extractors.weights import load_state_dict_file

    net = M.DemoVAENet()
    net.load_state_dict(load_state_dict_file(models_dir / f"{VAE_NAME}.safetensors"), strict=True)
    return net.eval()


def _build_zoo(
    cfg: DemoConfig,
    seed: int,
    force: bool,
    data: _Data,
    models: dict[str, dict[str, Any]],
    models_dir: Path,
    zoo_dir: Path,
    steps: StepTimer,
) -> dict[str, dict[str, Any]]:
    entries: dict[str, Any] = dict(read_json(zoo_dir / "zoo.json").get("sets", {}))
    n = cfg.n_per_set
    base = {"data": data.key, "seed": seed, "n": n, "code": CODE_VERSION}
    dropped = sorted(int(c) for c in np.random.default_rng([seed, 3]).choice(10, size=cfg.n_dropped, replace=False))
    dropped_names = [FASHION_MNIST_CLASSES[c] for c in dropped]

    def entry(name: str, images: np.ndarray, labels: np.ndarray | None, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "n": int(images.shape[0]),
            "role": "generated",
            "labels_known": labels is not None,
            "flaw": FLAWS[name],
            **extra,
        }

    def ideal() -> dict[str, Any]:
        x, y, idx = Z.pick_ideal(data.heldout_x, data.heldout_y, n, seed=np.random.default_rng([seed, 10]))
        Z.save_zoo_npz(zoo_dir / "ideal.npz", x, y, heldout_index=idx)
        return entry("ideal", x, y, source="held-out train-split images (zoo/splits.npz heldout_index[heldout_index])")

    def memorizer() -> dict[str, Any]:
        x, y, idx = Z.make_memorizer(
            data.train_x, data.train_y, n, seed=np.random.default_rng([seed, 11]), **MEMORIZER_JITTER
        )
        Z.save_zoo_npz(zoo_dir / "memorizer.npz", x, y, train_index=idx)
        return entry(
            "memorizer", x, y, source="jittered copies of training images; train_index = row in the train cache"
        )

    def mode_dropper() -> dict[str, Any]:
        x, y, idx = Z.make_mode_dropper(
            data.heldout_x, data.heldout_y, n, dropped, seed=np.random.default_rng([seed, 12])
        )
        Z.save_zoo_npz(zoo_dir / "mode-dropper.npz", x, y, heldout_index=idx)
        flaw = FLAWS["mode-dropper"].format(k=len(dropped), names=", ".join(dropped_names))
        return {
            **entry("mode-dropper", x, y),
            "flaw": flaw,
            "dropped_classes": dropped,
            "dropped_class_names": dropped_names,
        }

    def blurry() -> dict[str, Any]:
        x, y, idx = Z.make_blurry(data.heldout_x, data.heldout_y, n, seed=np.random.default_rng([seed, 13]), **BLUR)
        Z.save_zoo_npz(zoo_dir / "blurry.npz", x, y, heldout_index=idx)
        return entry("blurry", x, y, sigma_px=BLUR["sigma"], noise_grey_levels=BLUR["noise"])

    with steps("zoo: ideal") as rec:
        reuse_or_make_set("ideal", zoo_dir, digest_json({**base, "set": "ideal"}), force, entries, ideal, rec)
    with steps("zoo: memorizer") as rec:
        reuse_or_make_set(
            "memorizer",
            zoo_dir,
            digest_json({**base, "set": "memorizer", **MEMORIZER_JITTER}),
            force,
            entries,
            memorizer,
            rec,
        )
    with steps("zoo: mode-dropper") as rec:
        reuse_or_make_set(
            "mode-dropper",
            zoo_dir,
            digest_json({**base, "set": "mode-dropper", "dropped": dropped}),
            force,
            entries,
            mode_dropper,
            rec,
        )
        rec.note = "dropped: " + ", ".join(dropped_names)
    with steps("zoo: blurry") as rec:
        reuse_or_make_set(
            "blurry", zoo_dir, digest_json({**base, "set": "blurry", **BLUR}), force, entries, blurry, rec
        )

    vae_key = {**base, "vae": models[VAE_NAME]["sha256"], "n_pool": cfg.n_pool}

    def vae_pool() -> dict[str, Any]:
        labels = M.DemoVAENet.balanced_labels(cfg.n_pool)
        pool = _load_vae(models_dir).sample(labels, seed=seed + 20)
        Z.save_zoo_npz(zoo_dir / "vae-pool.npz", pool, labels)
        return {
            "name": "vae-pool",
            "n": cfg.n_pool,
            "role": "pool",
            "labels_known": True,
            "flaw": FLAWS["vae-pool"].format(n=cfg.n_pool, m=n),
        }

    def vae() -> dict[str, Any]:
        with np.load(zoo_dir / "vae-pool.npz", allow_pickle=False) as z:
            x, y = z["arr_0"][:n, :, :, 0], z["arr_1"][:n]
        Z.save_zoo_npz(zoo_dir / "vae.npz", x, y, pool_index=np.arange(n))
        return entry("vae", x, y, source=f"the first {n} samples of zoo/vae-pool.npz")

    with steps("zoo: vae pool + vae") as rec:
        pool_entry = reuse_or_make_set(
            "vae-pool", zoo_dir, digest_json({**vae_key, "set": "vae-pool"}), force, entries, vae_pool, rec
        )
        r2 = StepRecord("vae")
        reuse_or_make_set(
            "vae",
            zoo_dir,
            digest_json({**vae_key, "set": "vae", "pool": pool_entry["sha256"]}),
            force,
            entries,
            vae,
            r2,
        )
        rec.reused = rec.reused and r2.reused

    def hist_matched() -> dict[str, Any]:
        with np.load(zoo_dir / "vae-pool.npz", allow_pickle=False) as z:
            pool, labels = z["arr_0"][:, :, :, 0], z["arr_1"]
        clf = create_extractor(CLASSIFIER_NAME, weights=str(models_dir / WEIGHT_FILES[CLASSIFIER_NAME]), device="cpu")
        pool_logits = M.classify(clf.net, pool)
        ref_logits = M.classify(clf.net, data.ref_x)
        idx = Z.histogram_matched_indices(ref_logits, pool_logits, n, seed=seed + 30)
        pred = pool_logits.argmax(1)
        Z.save_zoo_npz(zoo_dir / "hist-matched.npz", pool[idx], labels[idx], pool_index=idx, predicted=pred[idx])
        ref_hist = np.bincount(ref_logits.argmax(1), minlength=10) / len(ref_logits)
        return {
            **entry("hist-matched", pool[idx], labels[idx]),
            "source": "zoo/vae-pool.npz rows pool_index (each predicted class's first pool samples)",
            "shared_with_vae": int((idx < n).sum()),
            "distinct_images": int(np.unique(idx).size),
            "pool_top1_histogram": (np.bincount(pred, minlength=10) / len(pred)).round(4).tolist(),
            "reference_top1_histogram": ref_hist.round(4).tolist(),
            "matched_top1_histogram": (np.bincount(pred[idx], minlength=10) / len(idx)).round(4).tolist(),
            "matched_class_histogram": (np.bincount(labels[idx], minlength=10) / len(idx)).round(4).tolist(),
        }

    with steps("zoo: hist-matched") as rec:
        key = digest_json(
            {
                **vae_key,
                "set": "hist-matched",
                "pool": pool_entry["sha256"],
                "classifier": models[CLASSIFIER_NAME]["sha256"],
            }
        )
        reuse_or_make_set("hist-matched", zoo_dir, key, force, entries, hist_matched, rec)
    return entries


def _set_index(cfg: DemoConfig, zoo_sets: dict[str, Any]) -> dict[str, Any]:
    sets: dict[str, Any] = {
        "reference": {
            "role": "reference",
            "n": cfg.n_reference,
            "labels_known": True,
            "description": "Fashion-MNIST test split: the real images every metric compares to",
        },
        "train": {
            "role": "train",
            "n": cfg.n_train,
            "labels_known": True,
            "description": "the training set of the demo models (memorization analyses compare to it)",
        },
    }
    for name in (*GENERATED_SETS, "vae-pool"):
        e = zoo_sets[name]
        sets[name] = {k: v for k, v in e.items() if k not in ("key", "name")}
    return sets


def _sources(data: _Data, zoo_dir: Path, cfg: DemoConfig) -> list[tuple[str, str, Any, int]]:
    """(set, role, image source, thumbnail px) of every cached set."""
    out = [
        (
            "reference",
            "reference",
            ArraySource(data.ref_x, data.ref_y, FASHION_MNIST_CLASSES, name="reference"),
            cfg.thumbnails,
        ),
        (
            "train",
            "train",
            ArraySource(data.train_x, data.train_y, FASHION_MNIST_CLASSES, name="train"),
            cfg.train_thumbnails,
        ),
    ]
    for name in (*GENERATED_SETS, "vae-pool"):
        src = NpzSource(zoo_dir / f"{name}.npz")
        src.class_names = list(FASHION_MNIST_CLASSES)
        role = "pool" if name == "vae-pool" else "generated"
        out.append((name, role, src, cfg.train_thumbnails if role == "pool" else cfg.thumbnails))
    return out


def _previous_index(out: Path) -> dict[str, Any]:
    """The ``workspace.json`` of an earlier build in ``out`` as written, or ``{}`` when there is
    none or it cannot be read (then everything it would let the build reuse is recomputed)."""
    try:
        return read_index(out).to_json()
    except (FileNotFoundError, ValueError):
        return {}


def _prune_stale_caches(caches_dir: Path, out: Path, caches: list[dict[str, Any]]) -> list[str]:
    """Delete cache folders of the demo's sets that the index no longer lists; returns their names.

    They are left by earlier builds with other weights (another seed, ``--force`` after a code
    change): a cache folder's name includes a hash of the extractor's weights. Only folders named
    ``<demo set>__...`` are touched, so other caches written into ``caches/`` are kept.
    """
    listed = {Path(out / c["path"]).name for c in caches}
    prefixes = tuple(f"{name}__" for name in ("reference", "train", *GENERATED_SETS, "vae-pool"))
    removed = []
    for path in sorted(caches_dir.iterdir()):
        if path.is_dir() and path.name.startswith(prefixes) and path.name not in listed:
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def _fd_table(
    out: Path,
    caches: list[dict[str, Any]],
    old: dict[str, Any] | None,
    extractors: tuple[str, ...] = EXTRACTORS,
) -> tuple[dict[str, Any], bool]:
    """FD (Fréchet distance, :func:`workbench.metrics.frechet.fd`) of every set to the reference, per extractor.

    Reused when the cache keys it was computed from are unchanged.
    """
    from ..metrics.frechet import fd_from_stats, feature_statistics

    keys = {f"{c['set']}|{c['extractor']}": c["key"] for c in caches}
    if old and old.get("cache_keys") == keys:
        return old, True
    table: dict[str, dict[str, float]] = {}
    for ext_name in extractors:
        ref = next(c for c in caches if c["extractor"] == ext_name and c["role"] == "reference")
        ref_stats = feature_statistics(open_cache(out / ref["path"]).features)
        table[ext_name] = {}
        for c in caches:
            if c["extractor"] != ext_name or c["role"] == "reference":
                continue
            stats = feature_statistics(open_cache(out / c["path"]).features)
            table[ext_name][c["set"]] = round(fd_from_stats(ref_stats.mean, ref_stats.cov, stats.mean, stats.cov), 6)
    return {
        "values": table,
        "cache_keys": keys,
        "note": "FD of each set to the reference (test split), all images of each set; squared feature units",
    }, False


def format_fd_table(index: dict[str, Any]) -> str:
    """The ``fd_vs_reference`` table of a workspace index as aligned text (sets x extractors)."""
    values = index["fd_vs_reference"]["values"]
    exts = list(values)
    sets = list(next(iter(values.values())))
    lines = [f"{'FD to reference':<16s}" + "".join(f"{e:>18s}" for e in exts)]
    for s in sets:
        lines.append(f"{s:<16s}" + "".join(f"{values[e][s]:>18.4f}" for e in exts))
    return "\n".join(lines)


def summary_text(ws: DemoWorkspace) -> str:
    """One short text summary of a built workspace (used by the CLI)."""
    acc = ws.index["models"][CLASSIFIER_NAME].get("test_accuracy")
    lines = [
        f"workspace  {ws.out}",
        f"index      {ws.out / WORKSPACE_FILE}",
        f"caches     {len(ws.index['caches'])} ({len(EXTRACTORS)} extractors x {len(ws.index['sets'])} sets)",
        f"classifier test accuracy {100 * acc:.2f}%" if acc is not None else "",
        format_fd_table(ws.index),
    ]
    domain = ws.index.get("domain")
    if domain:
        change = domain["topn_weighted_relative_change"]
        lines.append(
            f"domain     {ws.out / domain['path']} ({', '.join(domain['classes'])}; {FOREIGN_NAME} knows only "
            f"{', '.join(domain['foreign_classes'])})"
        )
        for n, c in change.items():
            lines.append(
                f"           Top-{n} matching under {FOREIGN_NAME}: FD {FOREIGN_NAME} {c[FOREIGN_NAME]:+.1%}, "
                f"{SSL_NAME} {c[SSL_NAME]:+.1%}, pixels {c['pixels']:+.1%} (whole pool, matching weights)"
            )
    return "\n".join(line for line in lines if line)
