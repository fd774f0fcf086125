"""The ablation's intervals and paired differences, read from the fine-tunes' per-item predictions.

The numbers come from :mod:`sec_cybert.results.significance`; this module finds each run's
``predictions-<split>.jsonl`` (written by the fine-tune stage), groups the items by company or
filing, and says in words what the differences mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog

from sec_cybert.results import significance as sig
from sec_cybert.stages.predictions import read_predictions

if TYPE_CHECKING:
    from sec_cybert.core.components import Stage

log = structlog.get_logger(__name__)

GroupBy = Literal["company", "filing", "item"]


@attrs.frozen
class Settings:
    """How the ablation's uncertainty is estimated (``sec-cybert ablate`` options)."""

    confidence: float = attrs.field(default=0.95, validator=[attrs.validators.gt(0), attrs.validators.lt(1)])
    resamples: int = attrs.field(default=2000, validator=attrs.validators.ge(99))
    test: str = attrs.field(default="permutation", validator=attrs.validators.in_(tuple(sig.TESTS)))
    group_by: GroupBy = attrs.field(default="company", validator=attrs.validators.in_(("company", "filing", "item")))
    seed: int = 0


def _group_field(records: Sequence[Mapping[str, Any]], wanted: GroupBy) -> tuple[str, str | None]:
    """The grouping actually used, and a note when it had to fall back."""
    order = {"company": ("company", "filing"), "filing": ("filing",), "item": ()}[wanted]
    for unit in order:
        if all(record["groups"].get(unit) for record in records):
            return unit, None if unit == wanted else f"no {wanted} on every item; grouped by {unit}"
    if wanted == "item":
        return "item", None
    return "item", (
        f"no {' or '.join(order)} field on every labeled item: items are resampled one by one, as if "
        "independent, so the intervals are too narrow when paragraphs of a filing are alike"
    )


def _head_predictions(records, head, unit: str) -> sig.HeadPredictions:
    index = {label: i for i, label in enumerate(head.labels)}
    return sig.HeadPredictions(
        ids=[r["id"] for r in records],
        groups=[r["id"] if unit == "item" else r["groups"][unit] for r in records],
        truth=[index[r["heads"][head.name]["truth"]] for r in records],
        predicted=[index[r["heads"][head.name]["predicted"]] for r in records],
        n_classes=len(head.labels),
    )


def pairs_of(variants: Sequence[str]) -> list[tuple[str, str]]:
    """Every variant against the first (base), and the last against the one before it
    (+DAPT+TAPT vs +DAPT: what TAPT adds)."""
    pairs = [(variant, variants[0]) for variant in variants[1:]]
    if len(variants) > 2:
        pairs.append((variants[-1], variants[-2]))
    return pairs


@attrs.frozen
class StageComparison:
    """Per head: the comparison of every variant; with what was used and what was noted."""

    by_head: dict[str, sig.Comparison]
    split: str
    group_by: str
    notes: tuple[str, ...] = ()

    def interval(self, column: str, variant: str) -> sig.Interval | None:
        for head, comparison in self.by_head.items():
            metric = column.removeprefix(f"{head}_")
            if metric != column and metric in comparison.intervals:
                return comparison.intervals[metric].get(variant)
        return None

    def differences(self) -> list[tuple[str, sig.Difference]]:
        return [(head, d) for head, comparison in self.by_head.items() for d in comparison.differences]

    def as_dict(self) -> dict[str, Any]:
        first = next(iter(self.by_head.values()))
        return {
            "split": self.split,
            "group_by": self.group_by,
            "items": first.items,
            "groups": first.groups,
            "seeds": first.seeds,
            "confidence": first.confidence,
            "resamples": first.resamples,
            "test": first.test_description,
            "notes": list(self.notes),
            "intervals": {
                f"{head}_{metric}": {variant: i.as_dict() for variant, i in by_variant.items()}
                for head, comparison in self.by_head.items()
                for metric, by_variant in comparison.intervals.items()
            },
            "differences": [
                {**d.as_dict(), "metric": f"{head}_{d.metric}", "sentence": self.sentence(head, d)}
                for head, d in self.differences()
            ],
        }

    def sentence(self, head: str, difference: sig.Difference) -> str:
        first = self.by_head[head]
        named = attrs.evolve(difference, metric=f"{head} {difference.metric.replace('_', ' ')}")
        return named.sentence(first.items)


def compare_stage(
    stage: Stage,
    variants: Sequence[str],
    runs_of: Mapping[str, Sequence[Any]],
    settings: Settings,
) -> StageComparison | None:
    """Compare the variants of one fine-tune stage, or None when its runs kept no predictions
    (a plugin stage, or runs from before predictions were written)."""
    heads = [head for head in getattr(stage, "heads", ()) if getattr(head, "kind", "multilabel") != "multilabel"]
    if not heads:
        return None
    splits = {str(run.metrics.get("evaluated_on")) for runs in runs_of.values() for run in runs}
    if len(splits) != 1 or splits == {"None"}:
        return None
    split = splits.pop()
    records = {variant: [read_predictions(run.output_dir, split) for run in runs_of[variant]] for variant in variants}
    missing = [variant for variant, runs in records.items() if any(r is None for r in runs)]
    if missing:
        log.info("ablation intervals skipped: runs without per-item predictions", stage=stage.name, variants=missing)
        return None
    unit, note = _group_field(records[variants[0]][0], settings.group_by)
    by_head = {}
    for head in heads:
        runs = {variant: [_head_predictions(r, head, unit) for r in records[variant]] for variant in variants}
        metrics = ["macro_f1"] + (["qwk"] if head.is_ordinal else [])
        by_head[head.name] = sig.compare(
            runs,
            metrics=metrics,
            pairs=pairs_of(list(variants)),
            confidence=settings.confidence,
            resamples=settings.resamples,
            seed=settings.seed,
            test=settings.test,
        )
    return StageComparison(by_head=by_head, split=split, group_by=unit, notes=(note,) if note else ())
