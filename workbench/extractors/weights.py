"""Resolving the ``weights=`` argument of the built-in extractors.

Every built-in extractor accepts ``weights`` as one of

* ``"default"`` - the published weights of the named model (downloaded by the model's usual
  library mechanism, or found in a local cache);
* ``"none"`` - random initialisation with a fixed seed (for tests; features are labelled
  not pretrained, identity ``random-init(seed=S)``);
* a path to a local weight file (``.pth`` / ``.pt`` / ``.bin`` via ``torch.load(weights_only=True)``,
  or ``.safetensors``); its identity is the SHA-256 of the file's bytes.

This module holds the helpers they share: spec parsing, file hashing, state-dict loading, seeded
initialisation and the "weights not available" error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..paths import weights_dir

DEFAULT = "default"
NONE = "none"


class WeightsUnavailableError(RuntimeError):
    """The published weights of an extractor could not be found locally nor downloaded."""


class WeightsError(ValueError):
    """A local weights file cannot be loaded, or does not fit the model it was given to."""


@dataclass(frozen=True)
class WeightsSpec:
    """A parsed ``weights=`` argument.

    Attributes:
        kind: ``"default"``, ``"none"`` or ``"file"``.
        path: the resolved local file when ``kind == "file"``, else None.
        raw: the string the user passed (recorded as ``WeightsInfo.spec``).
    """

    kind: str
    path: Path | None
    raw: str


def parse_weights_spec(weights: str | os.PathLike, *, extractor: str) -> WeightsSpec:
    """Parse ``weights`` (``"default"``, ``"none"`` or a path to an existing file).

    Raises:
        TypeError: ``weights`` is not a string or path.
        FileNotFoundError: a path that does not name an existing file.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights for extractor {extractor!r} must be 'default', 'none' or a path to a weight "
            f"file, got {type(weights).__name__}"
        )
    raw = os.fspath(weights)
    if raw.strip().lower() == DEFAULT:
        return WeightsSpec(kind=DEFAULT, path=None, raw=DEFAULT)
    if raw.strip().lower() == NONE:
        return WeightsSpec(kind=NONE, path=None, raw=NONE)
    path = Path(raw).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights={raw!r} for extractor {extractor!r} is neither 'default', 'none' nor an "
            f"existing file; pass weights='default' for the published weights or the path of a "
            f"local weight file"
        )
    return WeightsSpec(kind="file", path=path.resolve(), raw=str(path.resolve()))


_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, streamed in 1 MiB chunks.

    Cached per process on (resolved path, size, mtime), so building the same extractor twice
    hashes the file once.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _SHA256_CACHE:
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def file_identity(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a local weight file."""
    return f"sha256:{file_sha256(path)}"


def random_init_identity(seed: int) -> str:
    """Identity string of randomly initialised weights: ``random-init(seed=S)``."""
    return f"random-init(seed={seed})"


def check_init_seed(seed: object) -> int:
    """Validate the ``seed=`` option of random initialisation (a non-negative int)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Run model construction with torch's CPU RNG seeded to ``seed``, restoring the global state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors`` or a torch file (``weights_only=True``, on CPU).

    A top-level ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped. Nothing is
    ever unpickled beyond tensors and plain containers.

    Raises:
        WeightsError: the file cannot be read as weights, or holds no mapping of names to tensors
            (the message names the file and says what kind of file is expected).
    """
    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, SafetensorError, EOFError, OSError ...
        text = str(exc)
        if "Unsupported global" in text:
            why = (
                "it holds pickled Python objects other than tensors, which the workbench never unpickles; "
                "save a plain state dict (torch.save(model.state_dict(), path)) or a .safetensors file"
            )
        else:
            why = (
                f"it is not a PyTorch (.pt/.pth/.bin) or .safetensors weights file, or it is damaged "
                f"({type(exc).__name__})"
            )
        raise WeightsError(f"weights file {p} cannot be loaded: {why}") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {p} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def load_weights_into(module: torch.nn.Module, state: dict[str, torch.Tensor], *, path: object, extractor: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with a one-line error naming the file.

    Raises:
        WeightsError: missing or unexpected keys, or tensors of the wrong shape.
    """
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise WeightsError(
            f"weights file {path} does not fit extractor {extractor!r} ({detail[:300]}{' ...' if len(detail) > 300 else ''}); "
            "check that it is the checkpoint of this model and variant"
        ) from exc


def find_local_weight_file(filename: str) -> Path | None:
    """``weights_dir()/filename`` when that file exists, else None."""
    candidate = weights_dir() / filename
    return candidate if candidate.is_file() else None


def unavailable_message(extractor: str, filename: str, url: str, *, searched_local: bool = True) -> str:
    """The text of :class:`WeightsUnavailableError`: the file name, its URL and what to do.

    ``searched_local`` says whether the extractor looks for ``filename`` in :func:`weights_dir`
    (then putting the file there is the first remedy).
    """
    msg = (
        f"the published weights of extractor {extractor!r} are not available: {filename} was not "
        f"found locally and could not be downloaded from {url}."
    )
    if searched_local:
        return (
            f"{msg} Download that file on a machine with internet access and put it in "
            f"{weights_dir()} (the weights directory; set $WORKBENCH_WEIGHTS_DIR to change it), "
            f"or pass weights='/path/to/{filename}'."
        )
    return (
        f"{msg} Download it on a machine with internet access and pass weights='/path/to/{filename}' "
        f"(features are then labelled by the file's sha256, not as the published weights), or "
        f"copy that machine's download cache here."
    )
