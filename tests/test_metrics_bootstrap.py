"""Bootstrap: interval coverage on a closed form, seeding, per-field estimates and bias warnings."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest

from workbench.metrics.bootstrap import BootstrapResult, bootstrap, scalar_fields
from workbench.metrics.validation import SampleSizeWarning


def mean_difference(real, fake):
    return float(fake[:, 0].mean() - real[:, 0].mean())


@pytest.mark.slow
def test_percentile_interval_covers_true_difference_of_means():
    # 200 independent experiments, N(0,1) vs N(0.3,1), n = 60 each: the 90% interval of the difference of
    # means should cover 0.3 in ~90% of them (percentile bootstrap slightly under-covers at this n).
    # Binomial sd of the rate over 200 experiments is 0.021: accept [0.82, 0.97].
    rng = np.random.default_rng(0)
    hits = 0
    for trial in range(200):
        real = rng.standard_normal((60, 1))
        fake = rng.standard_normal((60, 1)) + 0.3
        res = bootstrap(mean_difference, real, fake, n=200, seed=trial, ci=0.90)
        hits += res.low <= 0.3 <= res.high
    assert 0.82 <= hits / 200 <= 0.97


def test_bootstrap_std_matches_standard_error():
    # std of the bootstrap distribution of a difference of means ~ sqrt(s_r^2/N + s_f^2/M)
    rng = np.random.default_rng(1)
    real = rng.standard_normal((400, 1)) * 2.0
    fake = rng.standard_normal((300, 1))
    res = bootstrap(mean_difference, real, fake, n=1000, seed=0)
    se = np.sqrt(real.var() / 400 + fake.var() / 300)
    assert res.std == pytest.approx(se, rel=0.1)  # Monte Carlo error of a 1000-replicate sd is ~2%
    assert res.point == mean_difference(real, fake)
    assert res.low < res.point < res.high


def test_bootstrap_is_deterministic_with_seed():
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((50, 3)), rng.standard_normal((40, 3))
    a = bootstrap(mean_difference, real, fake, n=30, seed=7)
    b = bootstrap(mean_difference, real, fake, n=30, seed=7)
    c = bootstrap(mean_difference, real, fake, n=30, seed=8)
    np.testing.assert_array_equal(a.replicates["value"], b.replicates["value"])
    assert a.estimates == b.estimates
    assert not np.array_equal(a.replicates["value"], c.replicates["value"])


def test_resample_fake_keeps_real_fixed():
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((30, 2)), rng.standard_normal((30, 2))

    def real_mean(r, f):
        return float(r.mean())

    fixed = bootstrap(real_mean, real, fake, n=20, resample="fake")
    assert fixed.std == pytest.approx(0.0, abs=1e-15)
    assert fixed.low == fixed.high == pytest.approx(real.mean(), abs=1e-15)
    assert bootstrap(real_mean, real, fake, n=20, resample="both").std > 0


@dataclass(frozen=True)
class _DataclassResult:
    shift: float
    spread: float
    per_dim: np.ndarray
    label: str


class _TupleResult(NamedTuple):
    shift: float
    spread: float


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s, p, arr: _DataclassResult(s, p, arr, "x"),
        lambda s, p, arr: _TupleResult(s, p),
        lambda s, p, arr: {"shift": s, "spread": p, "per_dim": arr},
    ],
    ids=["dataclass", "namedtuple", "dict"],
)
def test_per_field_intervals(wrap):
    rng = np.random.default_rng(4)
    real = rng.standard_normal((200, 2))
    fake = rng.standard_normal((200, 2)) * 3.0 + 1.0

    def two_fields(r, f, scale=1.0):
        return wrap(scale * float(f.mean() - r.mean()), scale * float(f.std() / r.std()), f.mean(axis=0))

    res = bootstrap(two_fields, real, fake, n=300, seed=1, scale=2.0)
    assert isinstance(res, BootstrapResult)
    assert sorted(res.estimates) == ["shift", "spread"]  # arrays and strings are not bootstrapped
    full = two_fields(real, fake, scale=2.0)
    assert res["shift"].point == scalar_fields(full)["shift"]
    # each field's interval comes from its own replicates
    for name in ("shift", "spread"):
        reps = res.replicates[name]
        assert res[name].low == pytest.approx(np.quantile(reps, 0.025))
        assert res[name].high == pytest.approx(np.quantile(reps, 0.975))
        assert res[name].n == 300
    assert res["spread"].low < 6.0 < res["spread"].high  # true ratio of std devs x scale = 6
    with pytest.raises(AttributeError, match="several fields"):
        _ = res.point


def test_metric_value_results_bootstrap_value_and_std_only():
    from workbench.metrics.results import MetricValue

    rng = np.random.default_rng(7)
    real, fake = rng.standard_normal((40, 2)), rng.standard_normal((40, 2))

    def spread_metric(r, f):
        d = f[:, 0].mean() - r[:, 0].mean()
        return MetricValue(value=d, n_real=len(r), n_fake=len(f), std=abs(d) / 2, ci=(d - 1, d + 1))

    res = bootstrap(spread_metric, real, fake, n=10)
    assert sorted(res.estimates) == ["std", "value"]  # counts, the tuple and the extra mapping skipped
    assert res["value"].point == pytest.approx(mean_difference(real, fake), rel=1e-12)


def test_warnings_for_known_biased_metrics():
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((20, 30)), rng.standard_normal((25, 30))

    def frechet_distance(r, f):
        return float(np.sum((r.mean(0) - f.mean(0)) ** 2))

    with pytest.warns(SampleSizeWarning) as record:
        bootstrap(functools.partial(frechet_distance), real, fake, n=3)
    messages = " ".join(str(w.message) for w in record)
    assert "bias FD upwards" in messages and "fewer samples than feature dimensions" in messages

    def precision_k(r, f):
        return 0.5

    with pytest.warns(SampleSizeWarning, match="nearest-neighbour"):
        bootstrap(precision_k, real, fake, n=3)

    def kd(r, f):
        return 0.0

    with pytest.warns(SampleSizeWarning, match="MMD"):
        bootstrap(kd, real, fake, n=3)

    def custom(r, f):
        return 1.0

    custom.bootstrap_bias = "declared by the metric"
    with pytest.warns(SampleSizeWarning, match="declared by the metric"):
        bootstrap(custom, real, fake, n=3)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bootstrap(mean_difference, real, fake, n=3)  # an unbiased statistic: no warning


def test_failing_replicates_are_dropped_with_warning():
    rng = np.random.default_rng(6)
    real, fake = rng.standard_normal((10, 1)), rng.standard_normal((10, 1))
    calls = {"n": 0}

    def flaky(r, f):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise ValueError("singular")
        return float(f.mean())

    with pytest.warns(SampleSizeWarning, match="raised and were dropped"):
        res = bootstrap(flaky, real, fake, n=9)
    assert res.estimates["value"].n == 6
    assert np.isnan(res.replicates["value"]).sum() == 3


def test_bootstrap_input_errors():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="resample"):
        bootstrap(mean_difference, x, x, resample="real")
    with pytest.raises(ValueError, match="n \\(number of bootstrap"):
        bootstrap(mean_difference, x, x, n=1)
    with pytest.raises(ValueError, match="ci"):
        bootstrap(mean_difference, x, x, ci=95)
    with pytest.raises(TypeError, match="callable"):
        bootstrap("fd", x, x)
    with pytest.raises(TypeError, match="must return"):
        bootstrap(lambda r, f: "high", x, x, n=2)
    with pytest.raises(ValueError, match="fake"):
        bootstrap(mean_difference, x, np.zeros(5))
