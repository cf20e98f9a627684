"""Feature extractors: a registry of built-in (Inception, CLIP, DINOv2, pixels) and user models."""

from .base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from .registry import create_extractor, default_device, list_extractors, register_extractor

__all__ = [
    "Extractor",
    "ExtractorOutput",
    "Preprocessor",
    "WeightsInfo",
    "create_extractor",
    "default_device",
    "list_extractors",
    "register_extractor",
]
