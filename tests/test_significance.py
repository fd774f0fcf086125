"""Intervals and paired tests of the ablation, on synthetic predictions whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, cohen_kappa_score

from sec_cybert.results import significance as sig
from sec_cybert.stages.metrics import macro_f1 as reference_macro_f1

K = 4


def confusion(truth: np.ndarray, predicted: np.ndarray, k: int = K) -> np.ndarray:
    counts = np.zeros((k, k))
    np.add.at(counts, (truth, predicted), 1)
    return counts


def noisy(truth: np.ndarray, error_rate: float, rng: np.random.Generator) -> np.ndarray:
    wrong = rng.random(truth.size) < error_rate
    return np.where(wrong, (truth + rng.integers(1, K, truth.size)) % K, truth)


def predictions(truth, predicted, groups, k: int = K) -> sig.HeadPredictions:
    return sig.HeadPredictions(
        ids=[f"p{i}" for i in range(len(truth))], groups=groups, truth=truth, predicted=predicted, n_classes=k
    )


@pytest.mark.parametrize("seed", range(5))
def test_metrics_of_counts_equal_sklearn_and_ours(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K - 1, 300)  # the last class absent: macro F1 must skip it
    predicted = noisy(truth, 0.4, rng)
    counts = confusion(truth, predicted)
    present = sorted(set(truth.tolist()))
    assert sig.macro_f1(counts) == pytest.approx(reference_macro_f1(truth, predicted, present))
    assert sig.accuracy(counts) == pytest.approx(accuracy_score(truth, predicted))
    assert sig.quadratic_weighted_kappa(counts) == pytest.approx(
        cohen_kappa_score(truth, predicted, weights="quadratic")
    )


def test_metrics_of_counts_work_on_stacks_of_matrices():
    rng = np.random.default_rng(1)
    stack = np.stack([confusion(t, noisy(t, 0.3, rng)) for t in rng.integers(0, K, (6, 100))]).reshape(2, 3, K, K)
    for metric in sig.METRICS.values():
        values = metric(stack)
        assert values.shape == (2, 3)
        assert values[1, 2] == pytest.approx(metric(stack[1, 2]))


def _two_variants(rng, *, items=400, groups=40, seeds=3, error_a=0.3, error_b=0.3):
    truth = rng.integers(0, K, items)
    group_of = [f"g{i % groups}" for i in range(items)]
    return {
        "base": [predictions(truth, noisy(truth, error_a, rng), group_of) for _ in range(seeds)],
        "+DAPT": [predictions(truth, noisy(truth, error_b, rng), group_of) for _ in range(seeds)],
    }


def test_a_variant_better_by_construction_gets_an_interval_that_excludes_zero():
    runs = _two_variants(np.random.default_rng(2), error_a=0.45, error_b=0.2)
    result = sig.compare(runs, metrics=["macro_f1", "qwk"], pairs=[("+DAPT", "base")], resamples=999)
    for difference in result.differences:
        assert difference.interval.low > 0, difference
        assert difference.distinguishable
        assert difference.p_value < 0.01
        assert difference.sentence(result.items).endswith("— distinguishable from noise")
    dapt, base = result.intervals["macro_f1"]["+DAPT"], result.intervals["macro_f1"]["base"]
    assert base.low < base.estimate < base.high < dapt.low < dapt.estimate < dapt.high


def test_identical_variants_get_p_values_that_are_roughly_uniform():
    rng = np.random.default_rng(3)
    p_values = []
    for _ in range(120):
        runs = _two_variants(rng, items=120, groups=30, seeds=2)
        result = sig.compare(runs, metrics=["macro_f1"], pairs=[("+DAPT", "base")], resamples=199, seed=int(rng.integers(1 << 30)))
        p_values.append(result.differences[0].p_value)
    p_values = np.array(p_values)
    # Under the null a valid test rejects at 5% about 5% of the time; a uniform law fits.
    assert 0.0 <= (p_values < 0.05).mean() <= 0.15
    assert 0.3 < p_values.mean() < 0.7
    assert stats.kstest(p_values, "uniform").pvalue > 0.001


def test_identical_predictions_have_p_value_one_and_a_zero_difference():
    runs = _two_variants(np.random.default_rng(4))
    runs["+DAPT"] = list(runs["base"])
    result = sig.compare(runs, metrics=["accuracy"], pairs=[("+DAPT", "base")], resamples=199)
    difference = result.differences[0]
    assert difference.p_value == 1.0
    assert difference.interval.as_dict() == {"estimate": 0.0, "low": 0.0, "high": 0.0}
    assert not difference.distinguishable
    assert difference.detectable_items is None


def test_an_interval_and_a_test_that_disagree_are_called_borderline():
    def difference(low, high, p):
        return sig.Difference("+DAPT", "base", "macro_f1", sig.Interval(0.02, low, high), p, 900, confidence=0.95)

    assert difference(0.001, 0.04, 0.01).distinguishable
    assert "borderline: the paired test gives p < 0.05, but the interval holds 0" in difference(-0.001, 0.04, 0.005).sentence(140)
    assert "borderline: the interval excludes 0, but the paired test gives p >= 0.05" in difference(0.001, 0.04, 0.08).sentence(140)
    quiet = difference(-0.01, 0.05, 0.3)
    assert not quiet.borderline and "not distinguishable from noise" in quiet.sentence(140)
    assert "about 900 holdout items" in quiet.sentence(140)


def test_grouping_widens_intervals_when_items_within_a_group_are_correlated():
    rng = np.random.default_rng(5)
    items, n_groups = 600, 30
    truth = rng.integers(0, K, items)
    group_index = np.arange(items) % n_groups
    # A whole filing is either read right or wrong: correctness is shared within a group.
    group_wrong = rng.random(n_groups) < 0.35
    predicted = np.where(group_wrong[group_index], (truth + 1) % K, truth)
    ids_as_groups = [f"item{i}" for i in range(items)]
    grouped = [f"g{g}" for g in group_index]

    def width(groups):
        run = {"base": [predictions(truth, predicted, groups)]}
        interval = sig.compare(run, metrics=["accuracy"], pairs=[], resamples=999).intervals["accuracy"]["base"]
        return interval.high - interval.low

    assert width(grouped) > 2 * width(ids_as_groups)


def test_seeds_are_resampled_so_seed_spread_widens_the_interval():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, K, 300)
    groups = [f"g{i % 30}" for i in range(300)]
    steady = [predictions(truth, noisy(truth, 0.3, np.random.default_rng(7)), groups)] * 3
    erratic = [predictions(truth, noisy(truth, rate, rng), groups) for rate in (0.05, 0.3, 0.6)]
    result = sig.compare({"steady": steady, "erratic": erratic}, metrics=["accuracy"], pairs=[], resamples=999)
    width = {name: i.high - i.low for name, i in result.intervals["accuracy"].items()}
    assert width["erratic"] > 2 * width["steady"]


def test_the_detectable_size_grows_as_the_difference_shrinks():
    draws = np.random.default_rng(8).normal(0.0, 0.02, 2000)
    small, large = sig.detectable_items(0.01, draws, 1000), sig.detectable_items(0.04, draws, 1000)
    assert small > large > 0
    assert small == pytest.approx(16 * large, rel=0.01)  # the size scales as 1/difference²


def test_predictions_of_other_items_are_refused():
    rng = np.random.default_rng(9)
    runs = _two_variants(rng, items=50, groups=5, seeds=1)
    shifted = runs["+DAPT"][0]
    runs["+DAPT"] = [sig.HeadPredictions(ids=[f"q{i}" for i in range(50)], groups=shifted.groups, truth=shifted.truth, predicted=shifted.predicted, n_classes=K)]
    with pytest.raises(ValueError, match="same items"):
        sig.compare(runs, metrics=["accuracy"], pairs=[])
    with pytest.raises(ValueError, match="outside"):
        predictions([0, 5], [0, 1], ["a", "b"])
