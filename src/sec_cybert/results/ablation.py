"""The ablation table: each pretraining variant fine-tuned alike, side by side.

Written as ``ablation.json`` (every number), ``ablation.md`` (the table for a paper or a PR)
and, when matplotlib is installed, ``ablation.png`` (a bar chart of the headline metrics).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from sec_cybert.results.ablation_intervals import Settings, StageComparison, compare_stage
from sec_cybert.stages.training import perplexity

if TYPE_CHECKING:
    from sec_cybert.core.components import Stage

log = structlog.get_logger(__name__)


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mean_of_measured(values: list[float | None]) -> float | None:
    """Mean over the seeds that measured it: a class absent from the split has F1 None, not 0."""
    measured = [x for x in values if x is not None]
    return statistics.fmean(measured) if measured else None


#: Where a stage's final metrics come from, said in the table: the split that picked the best
#: checkpoint is not a fair place to compare variants.
SELECTION_SPLIT = "eval"
#: The heading of the section the ablation adds to each fine-tune's model card.
CARD_SECTION = "## Ablation"
#: Said of a stage whose metrics lack ``evaluated_on`` (a plugin's stage need not report it).
UNREPORTED = "not reported"


@attrs.frozen
class AblationTable:
    """Rows of (variant, fine-tune stage) with headline metrics as mean/std over seeds, and every
    variant's MLM loss on the same held-out sets (``mlm_sets``)."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    mlm_sets: tuple[str, ...] = ()
    #: Per fine-tune stage: intervals and paired differences from per-item predictions.
    comparisons: tuple[tuple[str, StageComparison], ...] = ()

    @classmethod
    def from_results(
        cls,
        stages: Sequence[Stage],
        variants: Sequence[Any],
        results: Mapping[tuple[str, str, int], Any],
        seeds: Sequence[int],
        *,
        mlm_evaluation: Mapping[str, Mapping[str, float]] | None = None,
        uncertainty: Settings | None = None,
    ) -> AblationTable:
        """One row per (stage, variant). What a row shows of a stage is what its
        ``ablation_metrics()`` names: numbers become columns (mean ± std over seeds), mappings
        (per-class F1) are averaged key by key over the seeds that measured them, and lists
        (absent classes, a collapse to one class) are joined over seeds and noted under the table.
        ``mlm_evaluation`` is ``{set: {variant: loss}}``, every variant scored on each set.
        ``uncertainty`` sets how intervals and paired tests are computed (:mod:`sec_cybert.results.significance`)
        from the fine-tunes' per-item predictions."""
        mlm_evaluation = mlm_evaluation or {}
        uncertainty = uncertainty or Settings()
        named = {stage.name: tuple(getattr(stage, "ablation_metrics", tuple)()) for stage in stages}
        runs_of = {
            (stage.name, variant.name): [results[(stage.name, variant.name, seed)] for seed in seeds]
            for stage in stages
            for variant in variants
        }
        columns: list[str] = []
        for stage in stages:
            runs = [run for variant in variants for run in runs_of[(stage.name, variant.name)]]
            for name in named[stage.name]:
                if name not in columns and any(_is_number(r.metrics.get(name)) for r in runs):
                    columns.append(name)
        rows = []
        for stage in stages:
            for variant in variants:
                runs = runs_of[(stage.name, variant.name)]
                metrics, breakdowns, notes = {}, {}, {}
                for name in named[stage.name]:
                    values = [r.metrics.get(name) for r in runs]
                    if all(_is_number(x) for x in values):
                        metrics[name] = _summary([float(x) for x in values])
                    elif all(isinstance(x, Mapping) for x in values):
                        breakdowns[name] = {key: _mean_of_measured([x.get(key) for x in values]) for key in values[0]}
                    elif all(isinstance(x, list) for x in values) and any(values):
                        notes[name] = sorted({item for x in values for item in x}, key=str)
                mlm = {
                    name: {"loss": scores[variant.name], "perplexity": perplexity(scores[variant.name])}
                    for name, scores in mlm_evaluation.items()
                    if variant.name in scores
                }
                rows.append(
                    {
                        "variant": variant.name,
                        "task": stage.name,
                        "checkpoint": variant.checkpoint,
                        "finetuned": [str(r.output_dir) for r in runs],
                        # A plugin stage may not say where it measured: then the row says so, not "None".
                        "evaluated_on": sorted(
                            {str(split) for r in runs if (split := r.metrics.get("evaluated_on")) is not None}
                        ),
                        "metrics": metrics,
                        "breakdowns": breakdowns,
                        "notes": notes,
                        "mlm": mlm,
                    }
                )
        comparisons = []
        for stage in stages:
            by_variant = {variant.name: runs_of[(stage.name, variant.name)] for variant in variants}
            comparison = compare_stage(stage, [variant.name for variant in variants], by_variant, uncertainty)
            if comparison is not None:
                comparisons.append((stage.name, comparison))
        compared = dict(comparisons)
        for row in rows:
            comparison = compared.get(row["task"])
            row["intervals"] = {
                column: interval.as_dict()
                for column in columns
                if comparison and (interval := comparison.interval(column, row["variant"])) is not None
            }
        return cls(
            columns=tuple(columns),
            rows=tuple(rows),
            seeds=tuple(seeds),
            mlm_sets=tuple(mlm_evaluation),
            comparisons=tuple(comparisons),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "columns": list(self.columns),
            "mlm_sets": list(self.mlm_sets),
            "mlm_definition": (
                "mean cross-entropy (nats) over every masked target of the named stage's kept validation "
                "set, the same targets for every variant; perplexity = exp(loss)"
            ),
            "rows": list(self.rows),
            "comparisons": {task: comparison.as_dict() for task, comparison in self.comparisons},
        }

    def splits(self) -> list[str]:
        return sorted({split for row in self.rows for split in row["evaluated_on"]})

    def unreported(self) -> list[str]:
        """The tasks (fine-tune stages) whose metrics do not say which split they were measured on."""
        return sorted({row["task"] for row in self.rows if not row["evaluated_on"]})

    def _split_note(self) -> str:
        """Where the task metrics were measured, for the table's and the chart's captions."""
        splits, unreported = self.splits(), self.unreported()
        if not splits:
            return f"split {UNREPORTED}"
        note = f"on the {' and '.join(splits)} split"
        if unreported:
            note += f"; {', '.join(unreported)}: split {UNREPORTED}"
        return note

    def chart_title(self) -> str:
        seeds = ", ".join(map(str, self.seeds))
        spread = f"mean ± std over seeds {seeds}" if len(self.seeds) > 1 else f"seed {seeds}"
        if self.comparisons:
            confidence = self.comparisons[0][1].as_dict()["confidence"]
            spread = f"seeds {seeds}; bars: {confidence:.0%} intervals"
        note = self._split_note()
        return f"Ablation {note} ({spread})" if note.startswith("on ") else f"Ablation, {note} ({spread})"

    def to_markdown(self) -> str:
        multi_task = len({row["task"] for row in self.rows}) > 1
        splits = self.splits()
        on = f" ({'/'.join(splits)})" if splits and not self.unreported() else ""
        header = (["Task"] if multi_task else []) + [
            "Variant",
            *(f"{c}{on}" for c in self.columns),
            *(f"MLM loss, {name} validation" for name in self.mlm_sets),
        ]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [row["task"]] if multi_task else []
            cells.append(row["variant"] + (" (see notes)" if row["notes"] else ""))
            for column in self.columns:
                metric = row["metrics"].get(column)
                interval = row.get("intervals", {}).get(column)
                if metric is None:
                    cells.append("n/a")
                elif interval is not None:
                    cells.append(f"{interval['estimate']:.4f} [{interval['low']:.3f}, {interval['high']:.3f}]")
                elif len(self.seeds) > 1:
                    cells.append(f"{metric['mean']:.4f} ± {metric['std']:.4f}")
                else:
                    cells.append(f"{metric['mean']:.4f}")
            for name in self.mlm_sets:
                score = row["mlm"].get(name)
                cells.append(f"{score['loss']:.4f}" if score else "n/a")
            lines.append("| " + " | ".join(cells) + " |")
        seeds = ", ".join(str(s) for s in self.seeds)
        lines += [
            "",
            f"Seeds: {seeds}"
            + (" (mean ± sample std)" if len(self.seeds) > 1 and not self.comparisons else "")
            + f". Task metrics{' ' if splits else ': '}{self._split_note()}.",
        ]
        lines += self._comparison_lines(multi_task)
        if SELECTION_SPLIT in splits:
            lines.append(
                f"Warning: metrics on the {SELECTION_SPLIT} split are measured on the split that picked each "
                "fine-tune's best checkpoint, so they are optimistic; give the fine-tune a holdout_file."
            )
        if self.mlm_sets:
            lines.append(
                "MLM loss: every variant, base included, on the same masked targets of each stage's held-out "
                "validation set (whole filings, whole paragraphs); perplexity = e^loss (ablation.json)."
            )
        for row in self.rows:
            where = f"{row['task']} {row['variant']}" if multi_task else row["variant"]
            for name, values in row["notes"].items():
                lines.append(f"{where}: {name} (over seeds): {', '.join(map(str, values))}.")
        return "\n".join(lines) + "\n"

    def _comparison_lines(self, multi_task: bool) -> list[str]:
        """How the intervals were made, and each paired difference said in words."""
        lines = []
        for task, comparison in self.comparisons:
            facts = comparison.as_dict()
            drawn = (
                f"{facts['items']} items (one by one)"
                if facts["group_by"] == "item"
                else f"{facts['items']} items in {facts['groups']} whole {facts['group_by']} groups"
            )
            lines += [
                "",
                (f"{task}: " if multi_task else "")
                + f"[low, high]: {facts['confidence']:.0%} intervals from {facts['resamples']} resamples of the "
                f"{facts['split']} split's {drawn} and of the {facts['seeds']} seed(s), drawn together "
                f"(a multi-bootstrap); p-values from a {facts['test']}.",
                *(f"Note: {note}." for note in facts["notes"]),
                "",
                "Paired differences (same items, same seeds):",
                "",
                *(f"- {difference['sentence']}" for difference in facts["differences"]),
                "",
            ]
        return lines

    def card_section(self, row: Mapping[str, Any]) -> str:
        """The model card's ablation section for one row's fine-tunes: its metrics with their
        intervals, and the paired differences that involve its variant, in words."""
        lines = [CARD_SECTION, "", f"Variant `{row['variant']}` of the ablation (`../ablation.md` has the whole table)."]
        lines.append("")
        for column in self.columns:
            metric, interval = row["metrics"].get(column), row.get("intervals", {}).get(column)
            if interval:
                lines.append(f"- {column}: {interval['estimate']:.4f} [{interval['low']:.3f}, {interval['high']:.3f}]")
            elif metric:
                lines.append(f"- {column}: {metric['mean']:.4f}")
        for task, comparison in self.comparisons:
            if task != row["task"]:
                continue
            facts = comparison.as_dict()
            involved = [d for d in facts["differences"] if row["variant"] in (d["variant"], d["baseline"])]
            if involved:
                lines += ["", f"Paired differences on the {facts['split']} split ({facts['confidence']:.0%} intervals):", ""]
                lines += [f"- {d['sentence']}" for d in involved]
        return "\n".join(lines) + "\n"

    def annotate_cards(self) -> int:
        """Add (or replace) the ablation section of each fine-tune's model card; how many cards."""
        written = 0
        for row in self.rows:
            section = self.card_section(row)
            for directory in row["finetuned"]:
                card = Path(directory) / "README.md"
                if not card.is_file():
                    continue
                text = card.read_text(encoding="utf-8")
                before, found, after = text.partition(CARD_SECTION)
                rest = after[after.find("\n## ") + 1 :] if found and "\n## " in after else ""
                card.write_text(before.rstrip("\n") + "\n\n" + section + ("\n" + rest if rest else ""), encoding="utf-8")
                written += 1
        return written

    def write(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        (run_dir / "ablation.json").write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        (run_dir / "ablation.md").write_text(self.to_markdown())
        self.plot(run_dir / "ablation.png")
        self.annotate_cards()

    def plot(self, path: Path) -> bool:
        """A grouped bar chart of the headline metrics; skipped (False) without matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            log.info("matplotlib not installed; ablation.png skipped (pip install 'sec-cybert[plot]')")
            return False
        figure, axis = plt.subplots(figsize=(2 + 1.6 * len(self.columns), 4))
        width = 0.8 / max(1, len(self.rows))
        lowest = 0.0
        for i, row in enumerate(self.rows):
            means = [row["metrics"].get(c, {}).get("mean", 0.0) for c in self.columns]
            stds = [row["metrics"].get(c, {}).get("std", 0.0) for c in self.columns]
            positions = [c + i * width for c in range(len(self.columns))]
            label = (
                row["variant"]
                if len({r["task"] for r in self.rows}) == 1
                else f"{row['task']} {row['variant']}"
            )
            intervals = [row.get("intervals", {}).get(c) for c in self.columns]
            if all(intervals) and intervals:
                # The interval around the point estimate: asymmetric, so below and above apart.
                means = [i["estimate"] for i in intervals]
                errors = [[i["estimate"] - i["low"] for i in intervals], [i["high"] - i["estimate"] for i in intervals]]
            else:
                errors = stds if len(self.seeds) > 1 else None
            axis.bar(positions, means, width, yerr=errors, capsize=3, label=label)
            # A bar of 0 (or below: a QWK worse than chance) has no height to see: mark it at the
            # baseline, so a collapsed fine-tune shows on the chart instead of a gap.
            measured = [c in row["metrics"] or bool(i) for c, i in zip(self.columns, intervals, strict=True)]
            for position, mean, seen in zip(positions, means, measured, strict=True):
                if seen and mean <= 0:
                    axis.plot([position], [0], marker="v", color="tab:red", zorder=4)
                    axis.annotate(
                        f"collapsed ({mean:.2f})", (position, 0), xytext=(0, 6), textcoords="offset points",
                        rotation=90, ha="center", va="bottom", fontsize=7, color="tab:red",
                    )
            seed_values = [x for c in self.columns for x in row["metrics"].get(c, {}).get("values", [])]
            lowest = min(lowest, *means, *(i["low"] for i in intervals if i), *seed_values)
            if len(self.seeds) > 1:  # every seed's value, so the spread is seen, not only summarised
                for c, column in enumerate(self.columns):
                    values = row["metrics"].get(column, {}).get("values", [])
                    axis.scatter([positions[c]] * len(values), values, s=8, color="black", zorder=3)
        axis.set_xticks(
            [c + width * (len(self.rows) - 1) / 2 for c in range(len(self.columns))], self.columns
        )
        axis.set_ylim(lowest - 0.05 if lowest < 0 else 0, 1)
        axis.axhline(0, color="black", linewidth=0.6)
        axis.set_ylabel("score")
        axis.set_title(self.chart_title(), fontsize=10)
        axis.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return True
