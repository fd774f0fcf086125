"""Did DAPT help? Intervals and paired tests for the ablation, from per-item predictions.

Every variant is fine-tuned with the same seeds and scored on the same holdout paragraphs, so
the comparison is paired; and paragraphs of one filing (or one company) are written together,
so they are not independent. Both facts shape the statistics here:

- **Intervals** come from a *multi-bootstrap* (Sellam et al., "The MultiBERTs", ICLR 2022):
  each resample draws whole groups (companies or filings) with replacement *and* fine-tuning
  seeds with replacement, and the metric is the mean over the drawn seeds of the metric on the
  drawn groups. scipy's ``bootstrap`` resamples one level of independent observations, not
  groups and seeds together, hence our own resampling of confusion counts (a few lines of
  numpy, exact and fast: every metric here is a function of the confusion matrix).
- **Paired differences** use the same draws for both variants; the interval is the percentile
  interval of the drawn differences.
- **p-values** come from a paired permutation test (scipy's ``permutation_test`` with
  ``permutation_type="samples"``): under the null hypothesis that the variant does not matter,
  the two variants' predictions on a group are exchangeable, so each permutation swaps them group
  by group (for every seed at once). It makes no normality assumption, holds for macro F1 and
  kappa, which are not means of per-item scores, and is exact up to Monte Carlo error.

Only single-label heads (softmax, CORAL, thresholds) are covered: their metrics are functions of
one confusion matrix. A multilabel head is reported without intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import attrs
import numpy as np
from scipy import stats

#: z-scores behind the detectable-size estimate: a two-sided 5% test with 80% power.
_Z_ALPHA, _Z_POWER = 1.959964, 0.841621


@attrs.frozen
class HeadPredictions:
    """One fine-tuned model's predictions for one head on one split, item by item."""

    ids: tuple[str, ...] = attrs.field(converter=lambda values: tuple(str(v) for v in values))
    groups: tuple[str, ...] = attrs.field(converter=lambda values: tuple(str(v) for v in values))
    truth: tuple[int, ...] = attrs.field(converter=lambda values: tuple(int(v) for v in values))
    predicted: tuple[int, ...] = attrs.field(converter=lambda values: tuple(int(v) for v in values))
    n_classes: int = attrs.field(validator=attrs.validators.ge(2))

    def __attrs_post_init__(self) -> None:
        sizes = {len(self.ids), len(self.groups), len(self.truth), len(self.predicted)}
        if len(sizes) != 1:
            raise ValueError(f"ids, groups, truth and predicted differ in length: {sorted(sizes)}")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("item ids repeat: each holdout item must have one prediction")
        for name in ("truth", "predicted"):
            values = getattr(self, name)
            if values and not 0 <= min(values) <= max(values) < self.n_classes:
                raise ValueError(f"{name} holds a class outside 0..{self.n_classes - 1}")


# --------------------------------------------------------------------------- metrics of counts


def accuracy(confusion: np.ndarray) -> np.ndarray:
    """Accuracy of each confusion matrix in ``confusion[..., K, K]`` (rows = truth)."""
    total = confusion.sum(axis=(-1, -2))
    return np.divide(np.trace(confusion, axis1=-2, axis2=-1), total, out=np.zeros(total.shape), where=total > 0)


def macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Macro F1 over the classes the truth holds (as ``stages.metrics.macro_f1``): a class with
    no true item has no F1 to average, in the full split and in every resample alike."""
    true_positive = np.diagonal(confusion, axis1=-2, axis2=-1)
    support = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    denominator = support + predicted
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    present = support > 0
    count = present.sum(axis=-1)
    return np.divide((f1 * present).sum(axis=-1), count, out=np.zeros(count.shape), where=count > 0)


def quadratic_weighted_kappa(confusion: np.ndarray) -> np.ndarray:
    """Cohen's kappa with quadratic weights (sklearn's ``cohen_kappa_score(weights="quadratic")``)."""
    k = confusion.shape[-1]
    levels = np.arange(k)
    weights = (levels[:, None] - levels[None, :]) ** 2
    total = confusion.sum(axis=(-1, -2))
    expected = confusion.sum(axis=-1)[..., :, None] * confusion.sum(axis=-2)[..., None, :]
    expected = np.divide(expected, total[..., None, None], out=np.zeros(expected.shape), where=total[..., None, None] > 0)
    observed_cost = (weights * confusion).sum(axis=(-1, -2))
    expected_cost = (weights * expected).sum(axis=(-1, -2))
    return 1.0 - np.divide(observed_cost, expected_cost, out=np.ones(total.shape), where=expected_cost > 0)


#: Metric name suffix -> function of confusion counts; the ablation's column ``<head>_<suffix>``.
METRICS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = {
    "macro_f1": macro_f1,
    "accuracy": accuracy,
    "qwk": quadratic_weighted_kappa,
}


# --------------------------------------------------------------------------- group counts


def aligned_confusions(
    runs: Mapping[str, Sequence[HeadPredictions]],
) -> tuple[np.ndarray, tuple[str, ...], int]:
    """Per-group confusion counts ``[variant, seed, group, K, K]`` in the order of ``runs``.

    Every variant and seed must have predicted the same items with the same truth: that is what
    makes the comparison paired. Returns the counts, the group names and the number of items.
    """
    if not runs:
        raise ValueError("no predictions to compare")
    first = next(iter(runs.values()))[0]
    reference = dict(zip(first.ids, zip(first.groups, first.truth, strict=True), strict=True))
    seeds = {len(predictions) for predictions in runs.values()}
    if len(seeds) != 1 or 0 in seeds:
        raise ValueError(f"every variant needs predictions for the same seeds; got counts {sorted(seeds)}")
    group_names = tuple(sorted(set(first.groups)))
    group_index = {name: i for i, name in enumerate(group_names)}
    k = first.n_classes
    counts = np.zeros((len(runs), seeds.pop(), len(group_names), k, k), dtype=np.int64)
    for v, (variant, predictions) in enumerate(runs.items()):
        for s, run in enumerate(predictions):
            if run.n_classes != k or set(run.ids) != reference.keys():
                raise ValueError(
                    f"{variant} (seed #{s}) did not predict the same items as the first variant: "
                    "a paired comparison needs one holdout for all"
                )
            for item, group, truth, predicted in zip(run.ids, run.groups, run.truth, run.predicted, strict=True):
                if reference[item] != (group, truth):
                    raise ValueError(f"item {item!r} has another group or label in {variant}'s predictions")
                np.add.at(counts, (v, s, group_index[group], truth, predicted), 1)
    return counts, group_names, len(reference)


# --------------------------------------------------------------------------- resampling


def multi_bootstrap(
    counts: np.ndarray, metric: Callable[[np.ndarray], np.ndarray], *, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """``[variant, resample]`` draws of the seed-averaged metric, groups and seeds drawn with
    replacement, the *same* draws for every variant (so differences between rows are paired)."""
    n_variants, n_seeds, n_groups = counts.shape[:3]
    k = counts.shape[-1]
    group_weights = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=resamples)
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=resamples) / n_seeds
    flat = counts.reshape(n_variants, n_seeds, n_groups, k * k).astype(float)
    resampled = np.einsum("bg,vsgc->vbsc", group_weights, flat).reshape(n_variants, resamples, n_seeds, k, k)
    return (metric(resampled) * seed_weights[None]).sum(axis=-1)


def point_estimate(counts: np.ndarray, metric: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The metric of each variant on the whole split, averaged over seeds: ``[variant]``."""
    return metric(counts.sum(axis=2)).mean(axis=1)


def percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def paired_permutation_p(
    first: np.ndarray,
    second: np.ndarray,
    metric: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided p-value that ``first`` and ``second`` (``[seed, group, K, K]`` counts of two
    variants) score alike, swapping the two variants' predictions group by group."""
    n_seeds, n_groups, k, _ = first.shape
    base = first.sum(axis=1).reshape(n_seeds, k * k).astype(float)
    # Moving group g from the first variant to the second changes the first's counts by delta[g].
    delta = (second - first).transpose(1, 0, 2, 3).reshape(n_groups, n_seeds * k * k).astype(float)
    total = (first + second).sum(axis=1).reshape(n_seeds, k * k).astype(float)

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        # x holds group i's own index where it kept its variant, i + n_groups where it swapped.
        swapped = (np.moveaxis(x, axis, -1) >= n_groups).astype(float)
        a = base + (swapped @ delta).reshape(*swapped.shape[:-1], n_seeds, k * k)
        b = total - a
        shape = (*a.shape[:-1], k, k)
        return (metric(a.reshape(shape)) - metric(b.reshape(shape))).mean(axis=-1)

    result = stats.permutation_test(
        (np.arange(n_groups), np.arange(n_groups) + n_groups),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        random_state=rng,
    )
    return float(result.pvalue)


def paired_bootstrap_p(differences: np.ndarray) -> float:
    """Two-sided p-value of a zero difference from paired bootstrap draws of the difference:
    twice the smaller share of draws on either side of 0 (the interval's own test)."""
    below, above = float(np.mean(differences <= 0)), float(np.mean(differences >= 0))
    return min(1.0, 2 * min(below, above))


#: The paired tests ``compare`` offers, by name.
TESTS = {
    "permutation": "paired permutation test (each group's predictions swapped between the two variants)",
    "bootstrap": "paired multi-bootstrap (groups and seeds drawn alike for both variants)",
}


def detectable_items(observed: float, draws: np.ndarray, items: int) -> int | None:
    """Holdout size (items, in groups of today's mean size) at which a two-sided 5% test would
    detect ``observed`` with 80% power, taking the standard error to shrink as 1/sqrt(size).
    None when there is no difference to detect or no spread to scale."""
    spread = float(np.std(draws, ddof=1)) if draws.size > 1 else 0.0
    if observed == 0 or spread == 0 or not math.isfinite(spread):
        return None
    return math.ceil(items * ((_Z_ALPHA + _Z_POWER) * spread / abs(observed)) ** 2)


# --------------------------------------------------------------------------- the comparison


@attrs.frozen
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@attrs.frozen
class Difference:
    """``variant`` minus ``baseline`` on one metric, paired over items and seeds.

    The verdict needs the interval and the test to agree: the interval (a bootstrap percentile
    interval) and a permutation test answer slightly different questions, and near the edge one
    can exclude 0 while the other does not. Such a difference is called borderline, not shown
    as settled either way.
    """

    variant: str
    baseline: str
    metric: str
    interval: Interval
    p_value: float
    detectable_items: int | None
    confidence: float = 0.95

    @property
    def interval_excludes_zero(self) -> bool:
        return not self.interval.low <= 0 <= self.interval.high

    @property
    def test_rejects(self) -> bool:
        return self.p_value < 1 - self.confidence

    @property
    def distinguishable(self) -> bool:
        """Both the interval and the paired test say the two variants differ."""
        return self.interval_excludes_zero and self.test_rejects

    @property
    def borderline(self) -> bool:
        return self.interval_excludes_zero != self.test_rejects

    def verdict(self) -> str:
        alpha = f"{1 - self.confidence:.2g}"
        if self.distinguishable:
            return "distinguishable from noise"
        if not self.borderline:
            return "not distinguishable from noise at this holdout size"
        if self.test_rejects:
            return f"borderline: the paired test gives p < {alpha}, but the interval holds 0"
        return f"borderline: the interval excludes 0, but the paired test gives p >= {alpha}"

    def sentence(self, items: int) -> str:
        i = self.interval
        needed = (
            f"; about {self.detectable_items:,} holdout items would detect a difference this size "
            "(5% test, 80% power)"
            if self.detectable_items and not self.distinguishable and self.detectable_items > items
            else ""
        )
        return (
            f"{self.variant} vs {self.baseline}: {i.estimate:+.3f} {self.metric} "
            f"[{i.low:+.3f}, {i.high:+.3f}] ({self.confidence:.0%} interval), p = {self.p_value:.2g} — "
            f"{self.verdict()}{needed}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "variant": self.variant,
            "baseline": self.baseline,
            "metric": self.metric,
            **self.interval.as_dict(),
            "p_value": self.p_value,
            "detectable_items": self.detectable_items,
            "distinguishable": self.distinguishable,
            "borderline": self.borderline,
        }


@attrs.frozen
class Comparison:
    """Intervals for every variant and paired differences for the requested pairs, one head."""

    intervals: dict[str, dict[str, Interval]]  # metric -> variant -> interval
    differences: tuple[Difference, ...]
    items: int
    groups: int
    seeds: int
    confidence: float
    resamples: int
    test: str = "permutation"

    @property
    def test_description(self) -> str:
        return TESTS[self.test]


def compare(
    runs: Mapping[str, Sequence[HeadPredictions]],
    *,
    metrics: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    test: str = "permutation",
) -> Comparison:
    """Intervals of ``metrics`` (names in :data:`METRICS`) for every variant of ``runs``
    (``{variant: [predictions per seed]}``, seeds in the same order for every variant) and the
    paired difference, with a permutation p-value, of each ``(variant, baseline)`` in ``pairs``."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {', '.join(TESTS)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    unknown = sorted(set(metrics) - METRICS.keys())
    if unknown:
        raise ValueError(f"no interval for {unknown}; known: {sorted(METRICS)}")
    counts, groups, items = aligned_confusions(runs)
    names = list(runs)
    rng = np.random.default_rng(seed)
    intervals: dict[str, dict[str, Interval]] = {}
    differences = []
    for name in metrics:
        metric = METRICS[name]
        point = point_estimate(counts, metric)
        draws = multi_bootstrap(counts, metric, resamples=resamples, rng=rng)
        intervals[name] = {
            variant: Interval(float(point[v]), *percentile_interval(draws[v], confidence))
            for v, variant in enumerate(names)
        }
        for variant, baseline in pairs:
            v, b = names.index(variant), names.index(baseline)
            observed = float(point[v] - point[b])
            diff_draws = draws[v] - draws[b]
            differences.append(
                Difference(
                    variant=variant,
                    baseline=baseline,
                    metric=name,
                    interval=Interval(observed, *percentile_interval(diff_draws, confidence)),
                    p_value=(
                        paired_permutation_p(counts[v], counts[b], metric, resamples=resamples, rng=rng)
                        if test == "permutation"
                        else paired_bootstrap_p(diff_draws)
                    ),
                    detectable_items=detectable_items(observed, diff_draws, items),
                    confidence=confidence,
                )
            )
    return Comparison(
        intervals=intervals,
        differences=tuple(differences),
        items=items,
        groups=len(groups),
        seeds=counts.shape[1],
        confidence=confidence,
        resamples=resamples,
        test=test,
    )
