"""Metrics on embedding caches: compatibility checks and :func:`evaluate_caches`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..cache import EmbeddingCache, open_cache
from ..cache.manifest import extractor_differences
from ..progress import Progress
from ..protocols import Protocol, manifest_protocol, resolve_protocol
from .suite import FeatureSet, MetricReport, evaluate


class IncompatibleCachesError(ValueError):
    """Caches made by different extractors, weights or preprocessing cannot be compared."""


def feature_set(cache: EmbeddingCache) -> FeatureSet:
    """The features (memory-mapped), logits and labels of a cache as a :class:`FeatureSet`, with the
    protocol's record of how the set was sampled (``manifest["protocol"]["sample"]``, if any)."""
    entry = cache.manifest.get("protocol")
    sample = entry.get("sample") if isinstance(entry, Mapping) else None
    return FeatureSet(features=cache.features, logits=cache.logits, labels=cache.labels, sample=sample)


def cache_protocol(cache: EmbeddingCache) -> str:
    """The protocol a cache was extracted under (``"workbench"`` for a cache that records none)."""
    return manifest_protocol(cache.manifest)


NO_WEIGHTS = "no-weights"  # the weights identity of an extractor without weights, as in cache.manifest


def has_no_weights(extractor: Mapping[str, Any]) -> bool:
    """True when a cache manifest's extractor block describes an extractor without any weights
    (the ``pixels`` extractor: weights identity ``"no-weights"``), as opposed to random or
    non-published weights of a network (``"random-init(seed=0)"``, ``"sha256:..."``)."""
    weights = extractor.get("weights") or {}
    return weights.get("identity") == NO_WEIGHTS


def check_compatible(caches: Mapping[str, EmbeddingCache]) -> list[str]:
    """Raise :class:`IncompatibleCachesError` unless every cache has the same extractor description.

    Returns warnings to show: features from weights that are not the published ones (random
    initialisation, a local file). An extractor with no weights at all (``pixels``) gets none:
    its features are what they are, there are no published weights to miss.
    """
    items = list(caches.items())
    first_name, first = items[0]
    for name, cache in items[1:]:
        if cache_protocol(cache) != cache_protocol(first):
            raise IncompatibleCachesError(
                f"cannot compare {first_name} ({first.path}) with {name} ({cache.path}): they were extracted under "
                f"different protocols — {cache_protocol(first)!r} vs {cache_protocol(cache)!r}. Re-extract both "
                "with the same --protocol."
            )
        diff = extractor_differences(first.extractor, cache.extractor)
        if diff:
            raise IncompatibleCachesError(
                f"cannot compare {first_name} ({first.path}) with {name} ({cache.path}): they were made with "
                f"different extractor settings — "
                + "; ".join(diff[:5])
                + ". Re-extract both with the same --extractor, --weights and options."
            )
    warnings = []
    if not first.pretrained and not has_no_weights(first.extractor):
        ident = first.extractor["weights"]["identity"]
        warnings.append(
            f"features from {first.extractor['name']} with weights '{ident}', not the published pretrained "
            "weights: the values are not comparable with published numbers (e.g. this is not real FID)"
        )
    return warnings


def _open(c: EmbeddingCache | str | os.PathLike) -> EmbeddingCache:
    return c if isinstance(c, EmbeddingCache) else open_cache(c)


def evaluate_caches(
    ref: EmbeddingCache | str | os.PathLike,
    generated: Mapping[str, EmbeddingCache | str | os.PathLike] | Sequence[EmbeddingCache | str | os.PathLike],
    *,
    train: EmbeddingCache | str | os.PathLike | None = None,
    test: EmbeddingCache | str | os.PathLike | None = None,
    metrics: str | Sequence[str] = "default",
    bootstrap: int = 0,
    seed: int = 0,
    ci: float = 0.95,
    progress: Progress = None,
    missing: Literal["raise", "skip"] = "raise",
    protocol: str | Protocol | None = None,
) -> MetricReport:
    """:func:`~workbench.metrics.suite.evaluate` on caches, refusing to mix extractors or protocols.

    ``generated`` is ``{name: cache}`` or a list of caches (named by their source name; by their
    folder name when two source names collide; the same cache twice is a ValueError).
    A metric that fails for one set is an error in its cell of the report, not an exception
    (see :func:`~workbench.metrics.suite.evaluate`). ``metrics``, ``bootstrap``, ``seed``, ``ci``,
    ``progress`` and ``missing`` (``"raise"`` or ``"skip"`` an explicitly named metric whose inputs
    are missing, e.g. ``is`` on an extractor without logits) are passed to
    :func:`~workbench.metrics.suite.evaluate`; ``report.info["skipped"]`` says what was left out.
    The metrics follow the protocol the caches were extracted under (``manifest["protocol"]``,
    see :mod:`workbench.protocols`); ``protocol``, when given, must be that one (an
    :class:`IncompatibleCachesError` otherwise, since a tool's numbers need its preprocessing too).
    """
    if not isinstance(generated, Mapping):
        opened = [_open(g) for g in generated]
        names = [g.manifest["source"].get("name") or g.path.name for g in opened]
        if len(set(names)) != len(names):
            names = [g.path.name for g in opened]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(
                f"the same generated cache is given more than once ({', '.join(twice)}); pass each once, or "
                "a {name: cache} mapping to compare a cache with itself under two names"
            )
        generated = dict(zip(names, opened))
    gens = {k: _open(v) for k, v in generated.items()}
    ref_c = _open(ref)
    named = {"ref": ref_c, **{f"gen:{k}": v for k, v in gens.items()}}
    if train is not None:
        named["train"] = _open(train)
    if test is not None:
        named["test"] = _open(test)
    notes = check_compatible(named)
    used = cache_protocol(ref_c)
    if protocol is not None and resolve_protocol(protocol).name != used:
        asked = resolve_protocol(protocol).name
        raise IncompatibleCachesError(
            f"--protocol {asked}: the caches were extracted under protocol {used!r} ({ref_c.path}); re-extract "
            f"them with `workbench extract --protocol {asked}` (its preprocessing and image selection are part "
            "of the protocol), or leave --protocol out"
        )
    report = evaluate(
        feature_set(ref_c),
        {k: feature_set(v) for k, v in gens.items()},
        train=feature_set(named["train"]) if "train" in named else None,
        test=feature_set(named["test"]) if "test" in named else None,
        metrics=metrics,
        bootstrap=bootstrap,
        seed=seed,
        ci=ci,
        progress=progress,
        missing=missing,
        protocol=used,
    )
    report.warnings[:0] = notes
    report.info["extractor"] = ref_c.extractor
    report.info["pretrained"] = ref_c.pretrained
    report.info["caches"] = {k: str(v.path) for k, v in named.items()}
    return report
