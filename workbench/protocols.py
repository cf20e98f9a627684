"""Protocol presets: every setting with which a reference tool turns images into its numbers.

The workbench's own protocol (``"workbench"``, the default) uses every image, exact metrics and
its own seeded random generators. A *protocol preset* instead reproduces one reference tool,
so that the same images give that tool's numbers:

* ``"pytorch-fid"`` (pytorch-fid 0.3): Inception, torch bilinear resize of ``x/255``, ``2x - 1``;
  FID only.
* ``"clean-fid"`` (clean-fid 0.1.35, ``mode="clean"``): Inception, PIL bicubic per channel in
  float, ``(x - 128)/128``; FID, and KID from numpy's global generator (seeded here).
* ``"torch-fidelity"`` (torch-fidelity 0.4): Inception, TF1 bilinear resize of the 0..255 values,
  ``(x - 128)/128``; ISC, FID, KID and PRC with its ``rng_seed`` 2020.
* ``"dgm-eval"`` (layer6ai-labs/dgm-eval, Stein et al. 2023): Inception as pytorch-fid, CLIP and
  DINOv2 squashed to the model's square input; at most 50,000 images per set drawn with its seed
  13579 and sorted; KD and PRDC (on random subsets of 10,000) from its global random stream;
  Vendi as the mean over classes; IS with dgm-eval's splits.

Every preset is a frozen :class:`Protocol`; :func:`resolve_protocol` turns a name (or a
Protocol) into one. The extraction side (:meth:`Protocol.extractor_options`,
:meth:`Protocol.sample_rows`) is used by :func:`workbench.cache.extract`, which records the
protocol in the cache manifest (field ``protocol``; a cache without it is ``"workbench"``); the
metric side by :func:`workbench.metrics.evaluate` (``protocol=``), see
:mod:`workbench.metrics.protocols`.

What no preset changes: how images are found and decoded. The workbench walks a folder
recursively in sorted path order and converts every image to RGB as PIL's ``convert("RGB")``
does, which is what each tool does with a folder of images at its top level (pytorch-fid,
torch-fidelity and dgm-eval only read the top level, or dgm-eval's class subfolders; clean-fid
also recurses). This module imports nothing of the workbench: it is plain data, below every layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

DEFAULT_PROTOCOL = "workbench"


def _frozen(options: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in options.items()})


@dataclass(frozen=True)
class Protocol:
    """One protocol: extraction and metric settings of a reference tool (or of the workbench).

    Attributes:
        name: the preset's name (``--protocol NAME``).
        tool: the tool and version it reproduces, in words.
        description: one line for ``--help`` and ``workbench info``.
        extractors: ``{extractor name: {option: value}}``: the extractors the tool has and the
            options that make the workbench's extractor preprocess as the tool does (resize
            method, crop, normalisation). None: any extractor, with its own defaults (workbench).
            An extractor not listed is refused under this protocol.
        sample_size: at most this many images per set (dgm-eval's ``--nsample``, 50,000); a
            larger set is reduced to a random subset drawn with ``sample_seed`` and sorted.
            ``--limit N`` then sets this number. None: every image (``--limit N``: the first N).
        sample_seed: seed of that draw (``np.random.seed(seed); sorted(np.random.choice(N, n,
            replace=False))``, dgm-eval's 13579).
        metrics: the metrics the tool computes (workbench names); ``"default"`` means these
            under this protocol. None: the workbench's default set. Other metrics named
            explicitly are computed with the workbench's own settings, with a warning.
        kd_sampling: how KD subsets are drawn: ``"workbench"`` (``numpy.random.default_rng``),
            ``"randomstate"`` (a fresh ``np.random.RandomState(kd_seed)``, torch-fidelity and
            clean-fid) or ``"dgm-eval"`` (numpy's global stream as dgm-eval leaves it, see
            :mod:`workbench.metrics.protocols`).
        kd_seed: seed of the KD subsets (torch-fidelity's ``rng_seed`` 2020; clean-fid does not
            seed numpy, its KID changes from run to run: seeded here with 0).
        kd_generated_first: the generated set's subset is drawn before the reference's in each
            subset pair (torch-fidelity's ``input1`` and clean-fid's ``feats2`` are the generated
            set); False for dgm-eval (``feat_real`` first).
        kd_subsets: number of KD subsets (100 everywhere).
        kd_subset_size: rows per KD subset (1000 everywhere).
        kd_strict_size: refuse KD when a set has fewer rows than ``kd_subset_size``
            (torch-fidelity does); otherwise subsets of ``min(kd_subset_size, N_ref, N_gen)``.
        kd_reports_std: the tool reports the std over subsets (clean-fid reports only the mean).
        prdc_subset: PRDC on random subsets of this many rows of each set (dgm-eval's
            ``--reduced_n`` 10,000), drawn from dgm-eval's stream; None: every row.
        vendi: ``"whole"`` (the Vendi score of the whole generated set) or ``"mean-per-class"``
            (dgm-eval: the mean of the per-class scores, over the generated set's labels).
        is_shuffle_seed: the Inception Score permutes the rows with
            ``np.random.RandomState(seed).permutation(N)`` first (2020 in torch-fidelity and
            dgm-eval); None: rows in order (the original code, the workbench).
        is_drop_remainder: IS splits of ``N // splits`` rows, the last ``N % splits`` rows left
            out (dgm-eval); False: rows ``[k N // s, (k + 1) N // s)`` (the original, torch-fidelity).
        notes: what the preset does not reproduce, in words (shown by ``workbench info``).
    """

    name: str
    tool: str
    description: str
    extractors: Mapping[str, Mapping[str, Any]] | None = None
    sample_size: int | None = None
    sample_seed: int | None = None
    metrics: tuple[str, ...] | None = None
    kd_sampling: str = "workbench"
    kd_seed: int | None = None
    kd_generated_first: bool = False
    kd_subsets: int = 100
    kd_subset_size: int = 1000
    kd_strict_size: bool = False
    kd_reports_std: bool = True
    prdc_subset: int | None = None
    vendi: str = "whole"
    is_shuffle_seed: int | None = None
    is_drop_remainder: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def is_default(self) -> bool:
        """True for the workbench's own protocol."""
        return self.name == DEFAULT_PROTOCOL

    def extractor_options(self, extractor: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options of ``extractor`` under this protocol: ``given`` plus the preset's own.

        Raises:
            ValueError: the tool has no such extractor, or ``given`` sets an option of the
                preset to another value (both named, with what to do).
        """
        given = dict(given or {})
        if self.extractors is None:
            return given
        if extractor not in self.extractors:
            raise ValueError(
                f"--protocol {self.name} has no extractor {extractor!r}: {self.tool} uses "
                f"{', '.join(sorted(self.extractors))}; choose one of those or --protocol {DEFAULT_PROTOCOL}"
            )
        preset = dict(self.extractors[extractor])
        clash = {k: (v, preset[k]) for k, v in given.items() if k in preset and v != preset[k]}
        if clash:
            said = "; ".join(f"{k}={v!r} (the preset sets {p!r})" for k, (v, p) in clash.items())
            raise ValueError(
                f"--option {extractor}:{said} contradicts --protocol {self.name}, which reproduces {self.tool}; "
                "drop the option or use --protocol workbench"
            )
        return {**given, **preset}

    def sample_rows(self, n_total: int, limit: int | None = None) -> np.ndarray | None:
        """The rows of a set of ``n_total`` images this protocol uses, or None for all of them.

        ``limit`` is ``--limit``: the first ``limit`` rows, or, when the protocol draws a sample
        (dgm-eval), the sample size. dgm-eval's draw: ``np.random.seed(sample_seed)`` then
        ``sorted(np.random.choice(n_total, n, replace=False))`` when ``n_total > n``; the same
        calls on ``np.random.RandomState(sample_seed)`` give the same rows.
        """
        if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
            raise ValueError(f"limit must be a positive number of images, got {limit!r}")
        if self.sample_size is None:
            if limit is None or int(limit) >= n_total:
                return None
            return np.arange(int(limit), dtype=np.int64)
        size = int(limit) if limit is not None else self.sample_size
        if n_total <= size:
            return None
        rng = np.random.RandomState(self.sample_seed)
        return np.sort(rng.choice(n_total, size, replace=False)).astype(np.int64)

    def sample_size_for(self, limit: int | None) -> int | None:
        """The sample size actually used with ``--limit limit`` (None: every image)."""
        if self.sample_size is None:
            return None if limit is None else int(limit)
        return int(limit) if limit is not None else self.sample_size

    def manifest_entry(self, n_total: int, limit: int | None) -> dict[str, Any]:
        """What a cache manifest records: the name, and for sampling protocols the draw."""
        out: dict[str, Any] = {"name": self.name, "tool": self.tool}
        if self.sample_size is not None:
            size = self.sample_size_for(limit)
            out["sample"] = {
                "size": size,
                "seed": self.sample_seed,
                "from": int(n_total),
                "drawn": bool(size is not None and n_total > size),
            }
        return out

    def describe(self) -> str:
        """``name: description`` and the notes, for ``workbench info``."""
        text = f"{self.name}: {self.description}"
        if self.notes:
            text += " (" + "; ".join(self.notes) + ")"
        return text


_INCEPTION_LEGACY = {"resize": "legacy", "normalization": "pytorch-fid", "logits": "unbiased"}

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType(
    {
        p.name: p
        for p in (
            Protocol(
                name=DEFAULT_PROTOCOL,
                tool="the workbench",
                description="every image, exact metrics, the workbench's own seeded generators",
            ),
            Protocol(
                name="pytorch-fid",
                tool="pytorch-fid 0.3",
                description="Inception, torch bilinear resize of x/255 to 299, 2x - 1; FID of every image",
                extractors=_frozen({"inception": _INCEPTION_LEGACY}),
                metrics=("fd",),
                notes=("pytorch-fid reads only the top level of a folder",),
            ),
            Protocol(
                name="clean-fid",
                tool="clean-fid 0.1.35 (mode='clean')",
                description="Inception, PIL bicubic per channel in float to 299, (x - 128)/128; FID and KID",
                extractors=_frozen({"inception": {"resize": "clean", "normalization": "tf", "logits": "unbiased"}}),
                metrics=("fd", "kd"),
                kd_sampling="randomstate",
                kd_seed=0,
                kd_generated_first=True,
                kd_reports_std=False,
                notes=("clean-fid's KID draws from numpy's unseeded global generator; here seeded with 0",),
            ),
            Protocol(
                name="torch-fidelity",
                tool="torch-fidelity 0.4",
                description=(
                    "Inception, TensorFlow-1 bilinear resize of 0..255 values to 299, (x - 128)/128; "
                    "IS, FID, KID and precision/recall with rng_seed 2020"
                ),
                extractors=_frozen({"inception": {"resize": "tf1", "normalization": "tf", "logits": "unbiased"}}),
                metrics=("fd", "kd", "pr", "is"),
                kd_sampling="randomstate",
                kd_seed=2020,
                kd_generated_first=True,
                kd_strict_size=True,
                is_shuffle_seed=2020,
                notes=("torch-fidelity reads only the top level of a folder (png, jpg, jpeg)",),
            ),
            Protocol(
                name="dgm-eval",
                tool="dgm-eval (layer6ai-labs, commit 74c79f7)",
                description=(
                    "at most 50,000 images per set drawn with seed 13579; Inception as pytorch-fid, CLIP and "
                    "DINOv2 squashed to the square input; KD and PRDC (subsets of 10,000) from dgm-eval's "
                    "random stream; Vendi as the mean over classes"
                ),
                extractors=_frozen(
                    {
                        "inception": _INCEPTION_LEGACY,
                        "clip": {"resize_mode": "squash", "normalization": "openai", "feature": "pre-projection"},
                        "dinov2": {"img_size": 224},
                        # no preprocessing options: their defaults are dgm-eval's transforms
                        "convnext": {},
                        "data2vec": {},
                        "mae": {},
                    }
                ),
                sample_size=50_000,
                sample_seed=13579,
                metrics=("fd", "kd", "prdc", "vendi", "is"),
                kd_sampling="dgm-eval",
                kd_seed=13579,
                prdc_subset=10_000,
                vendi="mean-per-class",
                is_shuffle_seed=2020,
                is_drop_remainder=True,
                notes=(
                    "swav and simclr are not offered: the workbench centre-crops them, dgm-eval does not",
                    "dgm-eval orders class folders named by numbers numerically (2 before 10), the workbench by "
                    "name: with such folders a 50,000-image draw picks other images",
                    "dgm-eval computes IS of the set before each generated one (an off-by-one in its "
                    "get_inception_scores); the workbench gives the generated set's own",
                    "without a set over 50,000 images dgm-eval's KD and PRDC subsets come from numpy's "
                    "unseeded global generator; here it is seeded with 13579",
                ),
            ),
        )
    }
)


def resolve_protocol(protocol: str | Protocol | None) -> Protocol:
    """The :class:`Protocol` named ``protocol`` (None: ``"workbench"``); a Protocol is returned as is.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if protocol is None:
        return PROTOCOLS[DEFAULT_PROTOCOL]
    if isinstance(protocol, Protocol):
        return protocol
    if not isinstance(protocol, str) or protocol.strip().lower() not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol.strip().lower()]


def manifest_protocol(manifest: Mapping[str, Any]) -> str:
    """The protocol name a cache manifest records (``"workbench"`` when it has none)."""
    entry = manifest.get("protocol")
    if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
        return str(entry["name"])
    return DEFAULT_PROTOCOL
