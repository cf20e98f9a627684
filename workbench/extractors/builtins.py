"""Imports the built-in extractor modules so that they register themselves."""

from . import (
    clip,  # noqa: F401
    dinov2,  # noqa: F401
    inception,  # noqa: F401
    pixels,  # noqa: F401
)
