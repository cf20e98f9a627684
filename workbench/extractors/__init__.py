"""Feature extractors: a registry of built-in (Inception, CLIP, DINOv2, the other dgm-eval encoders, SigLIP,
pixels) and user models."""

from .base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from .registry import (
    ExtractorCard,
    create_extractor,
    default_device,
    list_extractors,
    register_extractor,
    registry_table,
)

__all__ = [
    "Extractor",
    "ExtractorCard",
    "ExtractorOutput",
    "Preprocessor",
    "WeightsInfo",
    "create_extractor",
    "default_device",
    "list_extractors",
    "register_extractor",
    "registry_table",
]
