"""Resolving ``weights=`` for the dgm-eval zoo encoders (ConvNeXt, MAE, data2vec, SwAV, SimCLRv2).

Every one of them follows the same rule: ``"none"`` is a seeded random initialisation (labelled
not pretrained); a path is a local checkpoint (identity = its SHA-256, labelled not pretrained,
since the workbench cannot tell which weights it holds); ``"default"`` is the official checkpoint
file, looked up by its exact published name in :func:`workbench.paths.weights_dir`, else fetched
by the model library's own download mechanism when there is one, else a
:class:`~workbench.extractors.weights.WeightsUnavailableError` naming the file and its URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .base import WeightsInfo
from .weights import (
    DEFAULT,
    NONE,
    WeightsError,
    WeightsUnavailableError,
    file_identity,
    find_local_weight_file,
    load_state_dict_file,
    parse_weights_spec,
    random_init_identity,
    unavailable_message,
)

StateDict = dict[str, torch.Tensor]


def load_checkpoint(path: str | os.PathLike, wrappers: Sequence[str] = ("state_dict", "model")) -> StateDict:
    """A state dict from a ``.safetensors`` or torch file (``weights_only=True``, on CPU).

    The first of ``wrappers`` that names a nested dict at the top level is unwrapped (SimCLRv2's
    converted checkpoints hold ``{"resnet": ..., "head": ...}``, MAE's ``{"model": ...}``).

    Raises:
        WeightsError: not a weights file, or no mapping of names to tensors (the message names the file).
    """
    p = Path(path)
    if p.suffix == ".safetensors":
        return load_state_dict_file(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # re-read for the explanation of load_state_dict_file (unpickling, damage, ...)
        return load_state_dict_file(p)
    if isinstance(obj, dict):
        for key in wrappers:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        expected = " or ".join(f"{{'{w}': state_dict}}" for w in wrappers)
        raise WeightsError(
            f"weights file {p} does not hold a state dict (a mapping of names to tensors, or {expected})"
        )
    return dict(obj)


def resolve_weights(
    weights: str | os.PathLike,
    *,
    extractor: str,
    filename: str,
    url: str,
    identity: str,
    seed: int,
    download: Callable[[], tuple[StateDict, str]] | None = None,
    wrappers: Sequence[str] = ("state_dict", "model"),
) -> tuple[StateDict | None, WeightsInfo]:
    """The state dict (None for random init) and :class:`WeightsInfo` of a ``weights=`` argument.

    Args:
        weights: ``"default"``, ``"none"`` or a path.
        extractor: registry name, for messages.
        filename: exact name of the official checkpoint file, looked up in ``weights_dir()``.
        url: where that file is published (for the error message and the manifest).
        identity: identity string of the published weights (e.g. ``"mae:vit-large/pretrain"``).
        seed: seed of the random initialisation (only recorded here).
        download: optional ``() -> (state, source)`` fetching the published weights through the
            model library (timm's hub download); any exception becomes a WeightsUnavailableError.
        wrappers: top-level keys to unwrap (see :func:`load_checkpoint`).

    Raises:
        FileNotFoundError: a path that is not a file. WeightsError: an unreadable file.
        WeightsUnavailableError: ``"default"`` and neither the local file nor a download.
    """
    spec = parse_weights_spec(weights, extractor=extractor)
    if spec.kind == NONE:
        return None, WeightsInfo(spec=NONE, pretrained=False, identity=random_init_identity(seed), source="random init")
    if spec.kind == "file":
        state = load_checkpoint(spec.path, wrappers)
        return state, WeightsInfo(
            spec=spec.raw, pretrained=False, identity=file_identity(spec.path), source=str(spec.path)
        )
    local = find_local_weight_file(filename)
    if local is not None:
        state = load_checkpoint(local, wrappers)
        return state, WeightsInfo(spec=DEFAULT, pretrained=True, identity=identity, source=str(local))
    if download is None:
        raise WeightsUnavailableError(unavailable_message(extractor, filename, url))
    try:
        state, source = download()
    except Exception as exc:  # hub / network errors come in many types
        raise WeightsUnavailableError(
            unavailable_message(extractor, filename, url)
            + f" (the library download failed too: {type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
        ) from exc
    return state, WeightsInfo(spec=DEFAULT, pretrained=True, identity=identity, source=source)


def load_strict(module: torch.nn.Module, state: StateDict, *, source: str, extractor: str, what: str) -> None:
    """``module.load_state_dict(state, strict=True)``; a mismatch is a WeightsError naming the file and the model."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        detail = " ".join(str(exc).split())
        raise WeightsError(
            f"weights file {source} does not fit extractor {extractor!r} ({detail[:300]}{' ...' if len(detail) > 300 else ''}); "
            f"check that it is the {what} checkpoint"
        ) from exc
