"""copy_rate: the share of generated samples flagged as likely copies of the training set.

Checked against the analysis layer's memorization_report (equal, exactly), against closed forms
on hand-built 1-D sets, and on its purpose: a set of noisy training copies is flagged, unrelated
or blurred images are not.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from workbench.analysis.memorization import memorization_report
from workbench.cache import extract
from workbench.metrics.copy_rate import UncalibratedCopyRateWarning, copy_rate, criterion_description


@pytest.fixture(scope="module")
def features() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(2000, 16))
    return {
        "train": train,
        "test": rng.normal(size=(500, 16)),
        "copies": train[rng.choice(2000, 400, replace=False)] + 0.05 * rng.normal(size=(400, 16)),
        "unrelated": rng.normal(size=(400, 16)),
        "mixed": np.vstack([train[:40] + 1e-3, rng.normal(size=(260, 16))]),
    }


def _quiet_copy_rate(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncalibratedCopyRateWarning)
        return copy_rate(*args, **kwargs)


# ----------------------------------------------------------------------------- closed forms


def test_distance_criterion_closed_form_with_interpolated_quantile() -> None:
    train = np.array([[0.0], [10.0], [20.0], [30.0]])
    test = np.array([[4.0], [13.0], [25.0]])  # nearest-training distances 4, 3, 5
    fake = np.array([[0.5], [21.0], [15.0], [33.6]])  # 0.5, 1, 5, 3.6
    # q = 0.25 of (3, 4, 5) with linear interpolation: position 0.25 * 2 = 0.5 -> 3 + 0.5 * (4 - 3)
    r = copy_rate(train, fake, test, quantile=0.25)
    assert r.criterion == "distance" and r.threshold == 3.5 and r.quantile == 0.25 and r.n_test == 3
    assert r.flagged.tolist() == [True, True, False, False]
    assert (r.n_flagged, r.n_fake, r.rate) == (2, 4, 0.5)
    np.testing.assert_allclose(r.score, [0.5, 1.0, 5.0, 3.6], rtol=0, atol=1e-12)  # 33.6 - 30 in float64
    # q = 0.5: the median, 4 -> 3.6 is flagged too
    assert copy_rate(train, fake, test, quantile=0.5).rate == 0.75
    assert r.description == "distance (calibrated on 3 test images, q=0.25)"


def test_ratio_criterion_closed_form_and_ties_count_as_copies() -> None:
    train = np.array([[0.0], [10.0], [20.0], [30.0]])  # every training point's nearest other: 10
    fake = np.array([[0.5], [21.0], [15.0], [45.0], [40.0]])
    # d1 = 0.5, 1, 5, 15, 10 and d2 = 10 each: ratios 0.05, 0.1, 0.5, 1.5, 1.0 (a tie: a copy)
    with pytest.warns(UncalibratedCopyRateWarning, match=r"uncalibrated.*--test DIR, or a set with role test"):
        r = copy_rate(train, fake)
    np.testing.assert_allclose(r.score, [0.05, 0.1, 0.5, 1.5, 1.0], rtol=0, atol=1e-15)
    assert r.flagged.tolist() == [True, True, True, False, True]
    assert (r.criterion, r.threshold, r.n_flagged, r.rate, r.n_test, r.quantile) == ("ratio", 1.0, 4, 0.8, 0, None)
    assert r.description == "ratio (uncalibrated: no test set)"
    # a duplicated training point: d2 = 0; an exact copy of it (d1 = 0) has ratio 0 (a copy),
    # anything else near it ratio inf (not a copy)
    dup = np.array([[0.0], [0.0], [10.0]])
    r = _quiet_copy_rate(dup, np.array([[0.0], [1.0]]))
    assert r.score.tolist() == [0.0, np.inf] and r.flagged.tolist() == [True, False]


def test_criterion_description() -> None:
    assert criterion_description(300) == "distance (calibrated on 300 test images, q=0.01)"
    assert criterion_description(None) == "ratio (uncalibrated: no test set)"


def test_inputs_are_validated_by_name() -> None:
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="quantile must be a number in \\[0, 1\\]"):
        copy_rate(x, x, x, quantile=1.5)
    with pytest.raises(ValueError, match="quantile"):
        copy_rate(x, x, x, quantile=True)
    with pytest.raises(ValueError, match="train"):
        copy_rate(np.zeros((1, 3)), x, x)
    with pytest.raises(ValueError, match="train and test have different feature dimensions"):
        copy_rate(x, x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="train and fake have different feature dimensions"):
        copy_rate(x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="fake"):
        copy_rate(x, np.full((2, 3), np.nan), x)


# ----------------------------------------------------------------------------- against memorization_report


@pytest.mark.parametrize("with_test", [True, False])
@pytest.mark.parametrize("fake", ["copies", "unrelated", "mixed"])
def test_equals_memorization_report_on_random_data(features, fake: str, with_test: bool) -> None:
    test = features["test"] if with_test else None
    ours = _quiet_copy_rate(features["train"], features[fake], test)
    report = memorization_report(features["train"], features[fake], test, progress=False)
    assert ours.rate == report.copy_rate and ours.n_flagged == report.n_flagged
    assert ours.criterion == report.criterion and ours.threshold == report.threshold
    np.testing.assert_array_equal(ours.flagged, report.likely_copy)


def test_copier_ranks_far_above_unrelated_data(features) -> None:
    copies = copy_rate(features["train"], features["copies"], features["test"])
    unrelated = copy_rate(features["train"], features["unrelated"], features["test"])
    # measured: copies 1.0, unrelated 0.015 (about q = 0.01, as for unseen real data by construction)
    assert copies.rate > 0.9 and unrelated.rate < 0.05
    # the uncalibrated ratio criterion flags a third of the unrelated samples (measured 0.33)
    assert _quiet_copy_rate(features["train"], features["unrelated"]).rate > 0.2


@pytest.mark.slow
def test_pixel_caches_of_copies_and_blurred_images(tmp_path: Path, fmnist_test) -> None:
    images, _ = fmnist_test
    rng = np.random.default_rng(0)
    train = images[:1200]
    rows = rng.choice(1200, 300, replace=False)
    noisy = np.clip(train[rows].astype(int) + rng.normal(0, 8, train[rows].shape), 0, 255).astype(np.uint8)
    blurred = np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(1.2))) for im in images[1500:1800]]
    )
    sets = {"train": train, "test": images[1200:1500], "copies": noisy, "blurry": blurred}
    caches = {name: extract(arr, "pixels", out=tmp_path, name=name, progress=False) for name, arr in sets.items()}
    rates = {}
    for gen in ("copies", "blurry"):
        for test in (caches["test"], None):
            ours = _quiet_copy_rate(
                caches["train"].features, caches[gen].features, None if test is None else test.features
            )
            report = memorization_report(caches["train"], caches[gen], test, progress=False)
            assert ours.rate == report.copy_rate and ours.threshold == report.threshold
            np.testing.assert_array_equal(ours.flagged, report.likely_copy)
            rates[gen, ours.criterion] = ours.rate
    # measured: copies 1.0 under both criteria; blurry 1 of 300 (0.0033) calibrated, 0.45 by ratio
    assert rates["copies", "distance"] == 1.0 and rates["blurry", "distance"] < 0.05
    assert rates["blurry", "ratio"] > 0.3  # why the ratio criterion is reported as uncalibrated
