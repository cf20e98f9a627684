"""Reference data shipped inside the package; ``README.md`` in this folder gives sources and licenses.

- ``human-eval-realism/``: human realism judgments of the dgm-eval study (MIT, Layer 6 AI);
- ``published/``: per-model metrics published by the same study;
- ``imagenet-labels.yml``: names of the 1008 outputs of the FID Inception network.

Read it through :func:`data_dir` (``importlib.resources.files("workbench.data")``, or
``$WORKBENCH_DATA_DIR`` when set), never through a path relative to a source checkout. The loaders
are :mod:`workbench.analysis.human_data` and
:func:`workbench.extractors.inception.inception_class_names`.
"""

from workbench.paths import data_dir

__all__ = ["data_dir"]
