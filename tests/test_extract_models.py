"""Every built-in extractor end to end through `extract` on real images, with random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cache import extract, open_cache
from workbench.extractors import create_extractor, list_extractors

pytestmark = pytest.mark.slow  # every built-in model end to end

CASES = {
    "inception": ({}, 2048, 1008),
    "clip": ({"model": "wb-test-tiny-vit"}, 48, None),
    "dinov2": ({"model": "vits14", "img_size": 56}, 384, None),
    "pixels": ({}, 768, None),
}


def test_all_builtins_are_registered() -> None:
    assert {"inception", "clip", "dinov2", "pixels"} <= set(list_extractors())


@pytest.mark.parametrize("name", list(CASES))
def test_extract_end_to_end_random_weights(name: str, tmp_path: Path, class_folder: Path, tiny_clip_config) -> None:
    options, dim, logits_dim = CASES[name]
    cache = extract(
        class_folder,
        name,
        weights="none",
        out=tmp_path,
        limit=24,
        batch_size=8,
        num_workers=1,
        progress=False,
        extractor_options=options,
    )
    assert cache.features.shape == (24, dim)
    assert np.isfinite(cache.features).all() and cache.features.std() > 0
    assert (cache.logits is None) if logits_dim is None else cache.logits.shape == (24, logits_dim)
    m = cache.manifest
    assert m["pretrained"] is False and m["extractor"]["weights"]["spec"] == "none"
    if name == "pixels":  # no weights at all: nothing published to miss
        assert m["warning"] is None and m["extractor"]["weights"]["identity"] == "no-weights"
    else:
        assert "NOT the published pretrained" in m["warning"]
    assert m["extractor"]["preprocessing"]  # fully described
    if name == "inception":
        assert m["extractor_class_names"][1].startswith("kit fox")
    # the cached features equal the extractor applied directly to the same decoded images
    ext = create_extractor(name, weights="none", device="cpu", **options)
    ids = list(cache.meta["id"][:8])
    imgs = [np.repeat(np.asarray(Image.open(class_folder / i))[:, :, None], 3, axis=2) for i in ids]
    direct = ext(torch.from_numpy(np.stack([ext.preprocessor(im) for im in imgs]))).features.numpy()
    np.testing.assert_allclose(open_cache(cache.path).features[:8], direct, rtol=1e-4, atol=1e-5)
