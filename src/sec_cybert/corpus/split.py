"""Split a labeled paragraph file into train / eval / holdout by company or by filing.

A random split of Item 1C paragraphs puts copies of the same text on both sides: companies
repeat it year after year. So the unit of a split here is a *group* (every paragraph of one
company, or of one filing), and groups that share a near-duplicate paragraph are joined into one
unit, so no copy crosses a split. Units are then dealt to the splits greedily, largest first,
each to the split whose label counts it brings closest to the target fractions -- the idea of
scikit-learn's ``StratifiedGroupKFold``, which only makes equal folds, extended to fractions
such as 80/10/10. Stratification is as good as the groups allow: one company's paragraphs never
split, however its labels fall.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.core.components import Document, ReadReport
from sec_cybert.core.files import write_text_atomic
from sec_cybert.corpus.sources import OnBadRecord, read_jsonl_documents
from sec_cybert.errors import ConfigError, DataError

log = structlog.get_logger(__name__)

SPLITS = ("train", "eval", "holdout")
#: ``--by`` aliases: the metadata fields (first present wins) that name a company or a filing in
#: `corpus item1c` output. Any other value of ``--by`` is a field name of its own.
GROUP_FIELDS = {"company": ("cik",), "filing": ("accession", "source_file")}


@attrs.frozen
class SplitReport:
    """What ``split_labeled`` wrote; also saved as ``split-report.json`` beside the splits."""

    input: str
    group_field: str
    stratify: str
    fractions: Mapping[str, float]
    records: int
    groups: int
    units: int
    near_duplicate_links: int
    splits: Mapping[str, Mapping[str, Any]]
    read: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def to_text(self) -> str:
        labels = sorted({label for s in self.splits.values() for label in s["labels"]})
        lines = [
            f"{self.records} records in {self.groups} groups by {self.group_field!r}; "
            f"{self.units} units after joining groups that share a near-duplicate "
            f"({self.near_duplicate_links} links)",
            f"{'split':<8} {'records':>8} {'groups':>7}  " + "  ".join(labels),
        ]
        for name, split in self.splits.items():
            counts = "  ".join(f"{split['labels'].get(label, 0):>{len(label)}}" for label in labels)
            lines.append(f"{name:<8} {split['records']:>8} {split['groups']:>7}  {counts}")
        return "\n".join(lines)


def parse_fractions(text: str) -> dict[str, float]:
    """``"0.8,0.1,0.1"`` -> {train: 0.8, eval: 0.1, holdout: 0.1}; they must sum to 1."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--fractions {text!r}: expected three numbers, e.g. 0.8,0.1,0.1") from None
    if len(values) != 3 or any(x < 0 for x in values) or abs(sum(values) - 1) > 1e-6 or values[0] == 0:
        raise ConfigError(
            f"--fractions {text!r}: expected train,eval,holdout fractions >= 0 that sum to 1, train > 0"
        )
    return dict(zip(SPLITS, values, strict=True))


def _group_values(documents: Sequence[Document], fields: Sequence[str]) -> list[str]:
    values, missing = [], []
    for document in documents:
        value = next((document.metadata[f] for f in fields if document.metadata.get(f) not in (None, "")), None)
        if value is None:
            missing.append(document.id)
        values.append(str(value))
    if missing:
        named = " or ".join(repr(f) for f in fields)
        raise DataError(
            f"{len(missing)} of {len(documents)} records have no {named} (e.g. {', '.join(missing[:3])}); "
            f"add it to every record, or split by another field with --by FIELD"
        )
    return values


def _units(groups: Sequence[str], clusters: Sequence[int]) -> tuple[list[int], int]:
    """Unit per record: records sharing a group or a duplicate cluster; and how many
    group-to-group links near-duplicates made."""
    from sec_cybert.corpus.dedup import DisjointSets

    sets = DisjointSets(list(range(len(groups))))
    first: dict[tuple[str, object], int] = {}
    links = 0
    for index, key in enumerate(groups):
        if ("group", key) in first:
            sets.union(first[("group", key)], index)
        else:
            first[("group", key)] = index
    for index, cluster in enumerate(clusters):
        if ("cluster", cluster) in first:
            links += sets.union(first[("cluster", cluster)], index)
        else:
            first[("cluster", cluster)] = index
    return [sets.find(i) for i in range(len(groups))], links


def assign_units(
    units: Sequence[int], labels: Sequence[str], fractions: Mapping[str, float], seed: int
) -> dict[int, str]:
    """Deal units to splits, largest first, each where it best closes the gap to the targets."""
    members: dict[int, list[int]] = {}
    for index, unit in enumerate(units):
        members.setdefault(unit, []).append(index)
    total = len(labels)
    label_totals = Counter(labels)
    targets = {s: {label: f * n for label, n in label_totals.items()} for s, f in fractions.items()}
    sizes = {s: f * total for s, f in fractions.items()}
    counts = {s: Counter() for s in fractions}
    filled = dict.fromkeys(fractions, 0)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda unit: -len(members[unit]))  # stable: ties stay in seeded order
    assignment: dict[int, str] = {}
    def cost(split: str, unit_labels: Counter[str], size: int) -> float:
        """How much further from its targets ``split`` gets by taking the unit (negative: closer)."""
        label_cost = sum(
            ((counts[split][label] + n - targets[split][label]) ** 2 - (counts[split][label] - targets[split][label]) ** 2)
            / label_totals[label]
            for label, n in unit_labels.items()
        )
        size_cost = ((filled[split] + size - sizes[split]) ** 2 - (filled[split] - sizes[split]) ** 2) / total
        return label_cost + size_cost

    for unit in order:
        unit_labels = Counter(labels[i] for i in members[unit])
        size = len(members[unit])
        choice = min((s for s in fractions if fractions[s] > 0), key=lambda s: cost(s, unit_labels, size))
        assignment[unit] = choice
        counts[choice].update(unit_labels)
        filled[choice] += size
    return assignment


def split_labeled(
    path: Path,
    out_dir: Path,
    *,
    by: str = "company",
    fractions: Mapping[str, float] | None = None,
    stratify: str = "category",
    threshold: float = 0.8,
    shingle_size: int = 3,
    seed: int = 42,
    text_field: str = "text",
    on_bad_record: OnBadRecord = "raise",
    overwrite: bool = False,
) -> SplitReport:
    """Write ``out_dir/{train,eval,holdout}.jsonl`` and ``split-report.json``; see the module doc."""
    from sec_cybert.corpus.dedup import duplicate_clusters

    fractions = dict(fractions or {"train": 0.8, "eval": 0.1, "holdout": 0.1})
    fields = GROUP_FIELDS.get(by, (by,))
    files = {split: out_dir / f"{split}.jsonl" for split in SPLITS}
    existing = [str(f) for f in files.values() if f.exists()]
    if existing and not overwrite:
        raise DataError(f"{', '.join(existing)} already exist; pass --overwrite or choose another --out")
    read = ReadReport()
    documents = list(
        read_jsonl_documents(
            [Path(path)], read, text_field=text_field, id_field="id", min_chars=1, on_bad_record=on_bad_record
        )
    )
    if not documents:
        raise DataError(f"{path} holds no usable records ({dict(read.skipped)} skipped)")
    groups = _group_values(documents, fields)
    labels = [str(d.metadata.get(stratify, "")) for d in documents]
    if all(label == "" for label in labels):
        log.warning("no stratification label", field=stratify)
    clusters = duplicate_clusters(
        (d.text for d in documents), "near", threshold=threshold, shingle_size=shingle_size
    )
    units, links = _units(groups, clusters.ids)
    wanted = [split for split in SPLITS if fractions[split] > 0]
    if len(set(units)) < len(wanted):
        raise DataError(
            f"{path}: only {len(set(units))} independent groups (by {by!r}, joined by near-duplicates), "
            f"too few for {len(wanted)} splits; split by a finer field (--by filing) or into fewer splits"
        )
    assignment = assign_units(units, labels, fractions, seed)
    empty = [split for split in wanted if split not in assignment.values()]
    if empty:
        raise DataError(
            f"{path}: no group landed in {', '.join(empty)} (too few groups for these fractions); "
            "raise their fractions or split by a finer field (--by filing)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        chosen = [i for i, unit in enumerate(units) if assignment[unit] == split]
        _write_jsonl(files[split], (documents[i] for i in chosen), text_field)
        written[split] = {
            "file": str(files[split]),
            "records": len(chosen),
            "groups": len({groups[i] for i in chosen}),
            "labels": dict(sorted(Counter(labels[i] for i in chosen).items())),
        }
    report = SplitReport(
        input=str(path),
        group_field=" or ".join(fields),
        stratify=stratify,
        fractions=fractions,
        records=len(documents),
        groups=len(set(groups)),
        units=len(set(units)),
        near_duplicate_links=links,
        splits=written,
        read=read.as_dict(),
    )
    write_text_atomic(out_dir / "split-report.json", json.dumps(report.as_dict(), indent=2) + "\n")
    log.info("labeled file split", **{split: s["records"] for split, s in written.items()})
    return report


def _write_jsonl(path: Path, documents: Any, text_field: str) -> None:
    lines = (
        json.dumps({"id": d.id, text_field: d.text, **d.metadata}, ensure_ascii=False) + "\n"
        for d in documents
    )
    write_text_atomic(path, "".join(lines))
