"""Registry of feature extractors: built-ins and user plug-ins, created by name.

Usage::

    from workbench.extractors import register_extractor, create_extractor

    @register_extractor("my-encoder", description="my SSL encoder")
    def make_my_encoder(weights: str = "default", **options) -> Extractor: ...

    ext = create_extractor("inception", weights="none")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .base import Extractor, resolve_device

Factory = Callable[..., Extractor]


@dataclass(frozen=True)
class RegisteredExtractor:
    name: str
    factory: Factory
    description: str


_REGISTRY: dict[str, RegisteredExtractor] = {}


def register_extractor(
    name: str,
    factory: Factory | None = None,
    *,
    description: str = "",
    overwrite: bool = False,
) -> Any:
    """Register ``factory`` under ``name``; usable as ``@register_extractor("name")`` too.

    The factory is called as ``factory(weights=..., **options)`` and must return an
    :class:`~workbench.extractors.base.Extractor`.
    """

    def _add(fn: Factory) -> Factory:
        if not callable(fn):
            raise TypeError(f"extractor factory for {name!r} must be callable, got {type(fn).__name__}")
        if name in _REGISTRY and not overwrite and _REGISTRY[name].factory is not fn:
            raise ValueError(f"an extractor named {name!r} is already registered; pass overwrite=True to replace it")
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        _REGISTRY[name] = RegisteredExtractor(name=name, factory=fn, description=doc)
        return fn

    if factory is not None:
        return _add(factory)
    return _add


def list_extractors() -> dict[str, str]:
    """Names of all registered extractors mapped to their one-line description."""
    _load_builtins()
    return {k: v.description for k, v in sorted(_REGISTRY.items())}


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return resolve_device(None)


def create_extractor(
    name: str,
    weights: str = "default",
    device: str | torch.device | None = None,
    **options: Any,
) -> Extractor:
    """Build the extractor registered as ``name`` and move it to ``device``.

    Args:
        name: registry name (see :func:`list_extractors`) or ``"package.module:factory"`` to
            import and register a plug-in factory on the fly.
        weights: ``"default"`` for the published weights, a local file path, or ``"none"``
            for random initialisation (tests only; such features are labelled as not pretrained).
        device: ``"cuda"``, ``"cpu"``, ... ; default CUDA if available.
        **options: extractor-specific options (e.g. ``model="ViT-B-16"`` for CLIP).
    """
    _load_builtins()
    if isinstance(name, Extractor):
        return name.to(device or name.device)
    target = resolve_device(device)  # before building the model: a bad --device fails fast
    if name not in _REGISTRY and ":" in name:
        _import_plugin(name)
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown extractor {name!r}; registered extractors: {known}")
    factory = _REGISTRY[name].factory
    _check_options(name, factory, options)
    extractor = factory(weights=weights, **options)
    if not isinstance(extractor, Extractor):
        raise TypeError(f"factory for extractor {name!r} returned {type(extractor).__name__}, expected an Extractor")
    return extractor.to(target)


def _check_options(name: str, factory: Factory, options: dict[str, Any]) -> None:
    """Refuse options the factory does not take, naming the ones it does (before building anything)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "weights"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"extractor {name!r} has no option {', '.join(map(repr, unknown))}; its options are: "
            + (", ".join(accepted) or "(none)")
        )


def _import_plugin(spec: str) -> None:
    """Register ``"package.module:factory"`` (a user plug-in) under that exact name."""
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise KeyError(f"cannot import extractor plug-in module {module_name!r} ({exc})") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise KeyError(f"module {module_name!r} has no attribute {attr!r} (from extractor spec {spec!r})")
    register_extractor(spec, factory)


_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Register the built-in extractors and those of installed plug-ins.

    Plug-ins declare factories in the ``workbench.extractors`` entry-point group
    (``name = "package.module:factory"``); they are imported here, on first use of the registry.
    """
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from importlib.metadata import entry_points

    from . import builtins  # noqa: F401

    for ep in entry_points(group="workbench.extractors"):
        if ep.name in _REGISTRY:
            continue
        try:
            factory = ep.load()
        except Exception as exc:  # a broken plug-in must not break the built-ins
            import warnings

            warnings.warn(f"extractor plug-in {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        if ep.name not in _REGISTRY:
            register_extractor(ep.name, factory)
