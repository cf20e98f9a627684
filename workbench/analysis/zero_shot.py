"""Zero-shot class labels from CLIP embeddings, for a user's own list of classes.

CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021) classifies an image among K text prompts by the cosine similarity of its image
embedding with the prompts' text embeddings, scaled by the learned temperature
``logit_scale = 100``::

    logits_ik = s * <x_i / ||x_i||, t_k / ||t_k||>,     label_i = argmax_k logits_ik,
    p_ik = softmax_k(logits_ik).

This gives class labels (and N x K logits usable by :func:`~workbench.analysis.classes.class_histogram`,
:func:`~workbench.analysis.topn_matching.match_topn_histogram` and
:func:`~workbench.analysis.per_class.per_class_metric`) for data sets whose classes are not
ImageNet's, e.g. to check whether a generator reproduces the real class balance.

Image and text embeddings must live in CLIP's *joint* space: image features from
``encode_image`` (the ``clip`` extractor with ``extractor_options={"feature": "projected"}``),
not the default pre-projection feature (dgm-eval's, used for FD), and text features from the same
model's ``encode_text``. The workbench's ``clip`` extractor does not load CLIP's text tower, so
text features are passed in as an array (``K x D``), e.g. computed once with open_clip::

    model, _, _ = open_clip.create_model_and_transforms("ViT-L-14", pretrained="datacomp_xl_s13b_b90k")
    tokens = open_clip.get_tokenizer("ViT-L-14")([f"a photo of a {c}." for c in classes])
    text_features = model.encode_text(tokens).detach().numpy()
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache
from workbench.metrics.validation import as_features

#: CLIP's learned logit scale (temperature): exp(4.6052) = 100, clamped there in training.
CLIP_LOGIT_SCALE = 100.0
_BLOCK_ROWS = 8192


class ZeroShotLabels(AnalysisResult):
    """Result of :func:`zero_shot_labels`.

    Main table ``"classes"``: ``class, class_name, count, share, mean_confidence`` (mean
    softmax probability of the assigned class over the samples assigned to it), sorted by count.

    Attributes:
        labels: ``N`` int64 zero-shot labels (index into ``class_names``).
        logits: ``N x K`` float32 scaled cosine similarities.
        probabilities: ``N x K`` float32 softmax of ``logits``.
        class_names: the ``K`` prompts / class names.
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        *,
        labels: np.ndarray,
        logits: np.ndarray,
        class_names: list[str],
        title: str,
        summary: str,
    ) -> None:
        super().__init__(tables, title=title, summary=summary, main="classes")
        self.labels = labels
        self.logits = logits
        self.class_names = class_names

    @property
    def probabilities(self) -> np.ndarray:
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def zero_shot_logits(image_features: Any, text_features: Any, *, logit_scale: float = CLIP_LOGIT_SCALE) -> np.ndarray:
    """``logit_scale * cos(image_i, text_k)``: ``N x K`` float32 zero-shot logits.

    Args:
        image_features: ``N x D`` CLIP image embeddings (joint space; read in row blocks).
        text_features: ``K x D`` text embeddings of the class prompts.
        logit_scale: CLIP's temperature, 100 for the released models.

    Raises:
        ValueError: different ``D``, zero-norm rows, NaN/inf, or a non-positive scale.
    """
    images = as_features(image_features, "image_features")
    text = np.asarray(as_features(text_features, "text_features"), dtype=np.float64)
    if images.shape[1] != text.shape[1]:
        raise ValueError(
            f"image_features have {images.shape[1]} dimensions but text_features have {text.shape[1]}; "
            "both must be CLIP joint-space embeddings of the same model (image features from "
            "encode_image: extract with extractor_options={'feature': 'projected'})"
        )
    if not np.isfinite(logit_scale) or logit_scale <= 0:
        raise ValueError(f"logit_scale must be a positive number; got {logit_scale}")
    text_norm = np.linalg.norm(text, axis=1)
    if (text_norm == 0).any():
        raise ValueError(f"text_features row {int(np.flatnonzero(text_norm == 0)[0])} is all zeros")
    text_unit = text / text_norm[:, None]
    out = np.empty((images.shape[0], text.shape[0]), dtype=np.float32)
    for start in range(0, images.shape[0], _BLOCK_ROWS):
        block = np.asarray(images[start : start + _BLOCK_ROWS], dtype=np.float64)
        norm = np.linalg.norm(block, axis=1)
        if (norm == 0).any():
            raise ValueError(f"image_features row {start + int(np.flatnonzero(norm == 0)[0])} is all zeros")
        out[start : start + len(block)] = logit_scale * (block / norm[:, None]) @ text_unit.T
    return out


def zero_shot_labels(
    cache_or_features: Any,
    class_prompts: Sequence[str],
    text_features: Any,
    *,
    logit_scale: float = CLIP_LOGIT_SCALE,
) -> ZeroShotLabels:
    """Zero-shot CLIP labels of images among the user's classes.

    Args:
        cache_or_features: a ``clip`` cache extracted with ``feature="projected"`` or ``N x D``
            CLIP image embeddings in the joint space.
        class_prompts: the ``K`` class names or prompts (``"a photo of a dog."``) that
            ``text_features`` encode, in the same order; shown in the tables.
        text_features: ``K x D`` text embeddings of ``class_prompts`` (CLIP ``encode_text``,
            normalised or not).
        logit_scale: CLIP's temperature (100).

    Returns:
        :class:`ZeroShotLabels` with ``labels``, ``logits``, ``probabilities`` and the per-class
        counts.

    Raises:
        ValueError: a CLIP cache holding the pre-projection feature, mismatched dimensions, or
            ``class_prompts`` and ``text_features`` of different lengths.

    Example::

        >>> import numpy as np
        >>> text = np.array([[1.0, 0.0], [0.0, 1.0]])            # stand-ins for encode_text output
        >>> images = np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.3]])
        >>> res = zero_shot_labels(images, ["cat", "dog"], text)
        >>> res.labels.tolist(), res.to_frame()["count"].tolist()
        ([0, 1, 0], [2, 1])
    """
    prompts = [str(p) for p in class_prompts]
    if isinstance(cache_or_features, EmbeddingCache):
        ext = cache_or_features.extractor
        if ext.get("name") == "clip" and str(ext.get("variant", "")).endswith("pre-projection"):
            raise ValueError(
                f"the cache {cache_or_features.path.name} holds CLIP's pre-projection feature (dgm-eval's, for "
                "FD), which is not in the space of the text embeddings; extract with "
                "extractor_options={'feature': 'projected'} for zero-shot labels"
            )
        if ext.get("name") != "clip":
            warnings.warn(
                f"the cache was made by extractor {ext.get('name')!r}, not 'clip': zero-shot labels need CLIP "
                "image embeddings in the same space as the text features",
                stacklevel=2,
            )
        features = cache_or_features.features
    else:
        features = cache_or_features
    n_text = getattr(text_features, "shape", (len(text_features),))[0]
    if len(prompts) != n_text:
        raise ValueError(
            f"class_prompts has {len(prompts)} entries but text_features has {n_text} rows; "
            "give one text embedding per class prompt, in the same order"
        )
    if len(prompts) < 2:
        raise ValueError("zero-shot labelling needs at least 2 classes")
    logits = zero_shot_logits(features, text_features, logit_scale=logit_scale)
    labels = logits.argmax(axis=1).astype(np.int64)
    k = len(prompts)
    counts = np.bincount(labels, minlength=k)
    z = logits - logits.max(axis=1, keepdims=True)
    assigned_prob = 1.0 / np.exp(z).sum(axis=1)  # softmax probability of the argmax class
    conf_sum = np.bincount(labels, weights=assigned_prob, minlength=k)
    frame = pd.DataFrame(
        {
            "class": np.arange(k),
            "class_name": prompts,
            "count": counts,
            "share": counts / counts.sum(),
            "mean_confidence": np.divide(conf_sum, counts, out=np.full(k, np.nan), where=counts > 0),
        }
    )
    frame = frame.sort_values(["count", "class"], ascending=[False, True], kind="stable").reset_index(drop=True)
    summary = (
        f"{len(labels)} images labelled among {k} classes by CLIP zero-shot "
        f"(logit scale {logit_scale:g}); {int((counts == 0).sum())} class(es) received no image"
    )
    return ZeroShotLabels(
        {"classes": frame},
        labels=labels,
        logits=logits,
        class_names=prompts,
        title="Zero-shot class labels",
        summary=summary,
    )
