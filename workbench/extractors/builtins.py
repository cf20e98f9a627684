"""Imports the built-in extractor modules so that they register themselves."""

from . import pixels  # noqa: F401
from . import inception  # noqa: F401
from . import clip  # noqa: F401
from . import dinov2  # noqa: F401
