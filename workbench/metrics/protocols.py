"""Metrics as a reference tool computes them: the metric side of :mod:`workbench.protocols`.

:func:`~workbench.metrics.suite.evaluate` (``protocol=``) calls :func:`protocol_metrics` for the
metrics whose subsets, random generators or reductions differ from the workbench's own; every
other metric is the workbench's (the formulas are the same: FD agrees with pytorch-fid, clean-fid
and torch-fidelity to 1e-6 relative, see the peer tests).

dgm-eval draws every random subset from numpy's *global* generator, which it seeds only when a
data loader reduces a set of more than ``--nsample`` images (``np.random.seed(13579)`` then one
``np.random.choice(N, nsample, replace=False)``). :func:`dgm_eval_draws` replays its ``main()``
in order: the Inception-Score pass (model ``inception`` with ``is`` requested: loaders of
``path[0 .. k-1]``), the reference loader, the ``--test_path`` loader, then for each generated
set its loader and ``compute_scores``: KD (100 subset pairs, the reference's rows first), then
PRDC (``min(10000, N_ref, N_gen)`` rows of each set, the reference first). What dgm-eval leaves
unseeded (no set above ``--nsample`` before a generated set) is seeded here with the protocol's
seed, so the numbers are reproducible; dgm-eval's own then change from run to run. The replay
equals a dgm-eval run whose ``--metrics`` are the metrics requested here (dgm-eval's ``fls``,
which the workbench does not have, would draw further rows before the next generated set).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..protocols import Protocol
from .inception_score import inception_score
from .kernel_distance import _poly_mmd2_unbiased, kd
from .prdc import prdc
from .validation import as_features
from .vendi import vendi

# which metrics of the suite each preset computes its own way
_OWN_WAY = ("kd", "prdc", "vendi", "is")


def protocol_request(protocol: Protocol, metrics: str | Sequence[str]) -> str | Sequence[str]:
    """``metrics`` with ``"default"`` replaced by the protocol's own metrics (when it names them)."""
    if protocol.metrics is None:
        return metrics
    names = [n.strip() for n in metrics.split(",")] if isinstance(metrics, str) else [str(n).strip() for n in metrics]
    out: list[str] = []
    for name in names:
        out.extend(protocol.metrics if name == "default" else [name])
    return [n for n in out if n]


def foreign_metrics_warning(protocol: Protocol, names: Sequence[str]) -> str | None:
    """One line naming the metrics computed under ``protocol`` that its tool does not compute."""
    if protocol.metrics is None:
        return None
    foreign = [n for n in names if n not in protocol.metrics]
    if not foreign:
        return None
    verb = "is" if len(foreign) == 1 else "are"
    return (
        f"{', '.join(foreign)} {verb} outside the {protocol.name} preset ({protocol.tool} does not compute "
        f"{'it' if len(foreign) == 1 else 'them'}, or not reproducibly, or not like the workbench); computed "
        "with the workbench's own settings"
    )


@dataclass(frozen=True)
class SetDraws:
    """dgm-eval's random rows for one generated set.

    Attributes:
        kd: ``(reference rows, generated rows)`` of each KD subset pair, in draw order; None when
            KD is not computed.
        prdc: ``(reference rows, generated rows)`` of the PRDC subsets; None when PRDC is not computed.
        seeded_by: which event last seeded numpy's global generator before these draws, in words.
    """

    kd: list[tuple[np.ndarray, np.ndarray]] | None
    prdc: tuple[np.ndarray, np.ndarray] | None
    seeded_by: str


def _drawn(sample: Mapping[str, Any] | None) -> bool:
    return bool(sample and sample.get("drawn"))


def dgm_eval_draws(
    n_ref: int,
    n_generated: Mapping[str, int],
    *,
    metrics: Sequence[str],
    seed: int,
    kd_subsets: int = 100,
    kd_subset_size: int = 1000,
    prdc_subset: int = 10_000,
    samples: Mapping[str, Mapping[str, Any] | None] | None = None,
    n_test: int | None = None,
    inception_pass: bool = False,
) -> dict[str, SetDraws]:
    """Replay dgm-eval's use of numpy's global generator; the random rows of every generated set.

    Args:
        n_ref: rows of the reference set (after dgm-eval's ``--nsample`` reduction).
        n_generated: ``{name: rows}`` of the generated sets, in dgm-eval's order (its ``path[1:]``).
        metrics: the metrics computed (``"kd"`` and ``"prdc"`` draw; ``"is"`` with
            ``inception_pass`` adds dgm-eval's Inception-Score loaders).
        seed: the stream's seed where dgm-eval leaves it unseeded.
        kd_subsets, kd_subset_size: KD subsets (100 of ``min(1000, N_ref, N_gen)`` rows).
        prdc_subset: dgm-eval's ``--reduced_n``.
        samples: each set's reduction record (``"ref"``, ``"test"`` and the generated names), as a
            cache manifest's ``protocol.sample``: ``{"from": N, "size": n, "seed": s, "drawn": bool}``;
            a set that was reduced re-seeds the stream and draws ``choice(N, n)`` from it.
        n_test: rows of the ``--test_path`` set, or None.
        inception_pass: the extractor is Inception and ``is`` is requested (dgm-eval then first
            builds loaders for ``path[0]`` to ``path[k-1]``).

    Returns:
        ``{name: SetDraws}`` for every generated set.
    """
    samples = dict(samples or {})
    state: dict[str, Any] = {"rs": None, "by": ""}

    def loader(role: str) -> None:
        sample = samples.get(role)
        if _drawn(sample):
            assert sample is not None
            rs = np.random.RandomState(int(sample["seed"]))
            rs.choice(int(sample["from"]), int(sample["size"]), replace=False)
            state["rs"], state["by"] = rs, f"the reduction of {role} to {sample['size']} images"

    def stream() -> np.random.RandomState:
        if state["rs"] is None:
            state["rs"] = np.random.RandomState(int(seed))
            state["by"] = f"the protocol seed {seed} (dgm-eval leaves numpy unseeded here)"
        return state["rs"]

    names = list(n_generated)
    if inception_pass and "is" in metrics:
        for role in (["ref", *names])[: len(names)]:
            loader(role)
    loader("ref")
    if n_test is not None:
        loader("test")
    out: dict[str, SetDraws] = {}
    for name in names:
        loader(name)
        n_gen = int(n_generated[name])
        kd_rows = None
        if "kd" in metrics:
            rs = stream()
            m = min(kd_subset_size, n_ref, n_gen)
            kd_rows = []
            for _ in range(kd_subsets):
                real_rows = rs.choice(n_ref, m, replace=False)
                gen_rows = rs.choice(n_gen, m, replace=False)
                kd_rows.append((real_rows, gen_rows))
        prdc_rows = None
        if "prdc" in metrics:
            rs = stream()
            reduced = min(prdc_subset, n_ref, n_gen)
            ref_rows = rs.choice(n_ref, reduced, replace=False)
            gen_rows = rs.choice(np.arange(n_gen), min(n_gen, reduced), replace=False)
            prdc_rows = (ref_rows, gen_rows)
        out[name] = SetDraws(kd=kd_rows, prdc=prdc_rows, seeded_by=state["by"] or "nothing (no draws)")
    return out


def unseeded_warning(protocol: Protocol, draws: Mapping[str, SetDraws], metrics: Sequence[str]) -> str | None:
    """One line when dgm-eval's own draws would have come from numpy's unseeded generator."""
    sets = [name for name, d in draws.items() if d.seeded_by.startswith("the protocol seed")]
    drawn = [m for m in ("kd", "prdc") if m in metrics]
    if not sets or not drawn:
        return None
    return (
        f"{', '.join(drawn)} ({', '.join(sets)}): {protocol.tool} draws these subsets from numpy's unseeded global "
        f"generator when no set before them was reduced to its sample size, so its own values vary from run to "
        f"run; here the generator is seeded with {protocol.kd_seed}"
    )


def _kd_tool(protocol: Protocol, ref: Any, gen: Any, draws: SetDraws | None) -> dict[str, float]:
    ref_arr, gen_arr = as_features(ref, "ref"), as_features(gen, "gen")
    if protocol.kd_sampling == "dgm-eval":
        if draws is None or draws.kd is None:
            raise ValueError("dgm-eval KD needs the replayed draws (internal error: none were planned)")
        gamma = 1.0 / ref_arr.shape[1]
        values = np.array(
            [
                _poly_mmd2_unbiased(
                    np.asarray(ref_arr[r], dtype=np.float64), np.asarray(gen_arr[g], dtype=np.float64), 3, gamma, 1.0
                )
                for r, g in draws.kd
            ]
        )
        return {"kd": float(values.mean()), "kd_std": float(values.std())}
    if protocol.kd_strict_size and min(len(ref_arr), len(gen_arr)) < protocol.kd_subset_size:
        raise ValueError(
            f"{protocol.tool} refuses KID subsets of {protocol.kd_subset_size} from sets of {len(gen_arr)} "
            f"(generated) and {len(ref_arr)} (reference) images (its kid_subset_size); use more images or "
            "--protocol workbench"
        )
    first, second = (gen_arr, ref_arr) if protocol.kd_generated_first else (ref_arr, gen_arr)
    r = kd(
        first,
        second,
        subsets=protocol.kd_subsets,
        subset_size=protocol.kd_subset_size,
        seed=protocol.kd_seed,
        sampling="randomstate",
    )
    std = r.std if (protocol.kd_reports_std and r.std is not None) else math.nan
    return {"kd": r.value, "kd_std": std}


def _prdc_tool(protocol: Protocol, ref: Any, gen: Any, draws: SetDraws | None) -> dict[str, float]:
    ref_arr, gen_arr = as_features(ref, "ref"), as_features(gen, "gen")
    if protocol.prdc_subset is not None:
        if draws is None or draws.prdc is None:
            raise ValueError("dgm-eval PRDC needs the replayed draws (internal error: none were planned)")
        ref_arr, gen_arr = ref_arr[draws.prdc[0]], gen_arr[draws.prdc[1]]
    r = prdc(ref_arr, gen_arr, k=5)
    return {"precision": r.precision, "recall": r.recall, "density": r.density, "coverage": r.coverage}


def _vendi_tool(protocol: Protocol, gen: Any, labels: np.ndarray | None, gen_name: str) -> dict[str, float]:
    if protocol.vendi == "whole":
        return {"vendi": float(vendi(gen))}
    if labels is None:
        raise ValueError(
            f"{protocol.tool} reports Vendi as the mean over the classes of the generated set, and set "
            f"{gen_name!r} has no class labels (dgm-eval gives NaN for a folder without class subfolders); "
            "use --protocol workbench for the Vendi score of the whole set"
        )
    result = vendi(gen, labels=np.asarray(labels))
    return {"vendi": float(np.mean(list(result.per_class.values())))}


def _is_tool(protocol: Protocol, logits: Any) -> dict[str, float]:
    arr = as_features(logits, "logits")
    splits = 10
    n = arr.shape[0]
    if protocol.is_shuffle_seed is not None:
        arr = arr[np.random.RandomState(protocol.is_shuffle_seed).permutation(n)]
    if protocol.is_drop_remainder:
        if n < splits:
            raise ValueError(f"logits has {n} rows, fewer than splits={splits}")
        arr = arr[: (n // splits) * splits]
    mean, std = inception_score(arr, splits=splits)
    return {"is": mean, "is_std": std}


def protocol_metrics(
    protocol: Protocol, draws: Mapping[str, SetDraws] | None = None
) -> dict[str, Callable[[Mapping[str, Any], str], dict[str, float]]]:
    """The metrics ``protocol`` computes its own way: ``{metric: fn(bundle, generated name)}``.

    ``bundle`` maps ``"ref"``, ``"gen"``, ``"train"``, ``"test"`` to feature sets (objects with
    ``features``, ``logits``, ``labels``); each function returns the metric's columns. Empty for
    the workbench's own protocol; a metric not listed is computed the workbench's way.
    """
    if protocol.is_default:
        return {}
    draws = dict(draws or {})
    fns: dict[str, Callable[[Mapping[str, Any], str], dict[str, float]]] = {}
    if protocol.kd_sampling != "workbench":
        fns["kd"] = lambda b, name: _kd_tool(protocol, b["ref"].features, b["gen"].features, draws.get(name))
    if protocol.prdc_subset is not None:
        fns["prdc"] = lambda b, name: _prdc_tool(protocol, b["ref"].features, b["gen"].features, draws.get(name))
    if protocol.vendi != "whole":
        fns["vendi"] = lambda b, name: _vendi_tool(protocol, b["gen"].features, b["gen"].labels, name)
    if protocol.is_shuffle_seed is not None or protocol.is_drop_remainder:
        fns["is"] = lambda b, name: _is_tool(protocol, b["gen"].logits)
    assert set(fns) <= set(_OWN_WAY)
    return fns
