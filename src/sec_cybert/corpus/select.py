"""Corpus selection: exact-duplicate removal, a newest-first token budget, the validation split.

The reference procedure subsampled "from the tail of the corpus" because its accession-sorted
shards were *roughly* chronological. We sort by the filing date itself, and filings of the same
date by id (the accession number for a built corpus), so shard order and file naming cannot
change which filings are kept: :func:`selection_order` is the one ordering, used by ``corpus
select`` and by an MLM stage's ``max_tokens`` budget alike.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import datasets


@attrs.frozen
class SelectionSummary:
    """What a token budget kept and left out, for reports and ``plan``."""

    documents_in: int
    documents_kept: int
    tokens_in: int
    tokens_kept: int
    undated: int
    newest_kept: str | None
    oldest_kept: str | None

    def as_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


#: Metadata keys that date a filing, best first. A filing fetched with ``corpus fetch`` has its
#: filing date (from EDGAR); one built from HTML alone has at least its period end date
#: (dei:DocumentPeriodEndDate), and a 10-K follows its period end by 60-90 days, so the order
#: is nearly the same.
DATE_KEYS = ("filing_date", "period_end")


def document_date(metadata: Mapping[str, Any]) -> str:
    """The ISO date a filing sorts by (see ``DATE_KEYS``), or '' when it has none."""
    for key in DATE_KEYS:
        if metadata.get(key):
            return str(metadata[key])
    return ""


def selection_order(dates: Sequence[str | None], ids: Sequence[str] | None = None) -> list[int]:
    """Positions, newest date first; equal dates by id (ascending); undated documents last.

    Two stable sorts: by id, then by date descending (``reverse`` keeps ties in id order).
    Without ids, or between equal ids, corpus order decides.
    """
    order = list(range(len(dates)))
    if ids is not None:
        order.sort(key=lambda i: str(ids[i]))
    order.sort(key=lambda i: dates[i] or "", reverse=True)
    return order


def iter_column(dataset: datasets.Dataset, column: str, batch_size: int = 1000) -> Iterator[Any]:
    """The values of one column, read in Arrow batches (never the whole column at once)."""
    for batch in dataset.select_columns([column]).iter(batch_size=batch_size):
        yield from batch[column]


def drop_exact_duplicates(
    dataset: datasets.Dataset, text_column: str = "text", *, prefer: Sequence[int] | None = None
) -> tuple[datasets.Dataset, int]:
    """Keep one of each set of exact copies (see :mod:`~sec_cybert.corpus.dedup`); return the
    dataset and how many copies were removed.

    The copy kept is the first in ``prefer`` (an order of all positions, e.g. :func:`selection_order`),
    else the first in the dataset; the kept rows stay in dataset order.
    """
    from sec_cybert.corpus.dedup import duplicate_clusters

    clusters = duplicate_clusters(iter_column(dataset, text_column), "exact")
    if prefer is None:
        keep = clusters.first_of_each()
    else:
        chosen: dict[int, int] = {}
        for index in prefer:
            chosen.setdefault(clusters.ids[index], index)
        keep = sorted(chosen.values())
    removed = len(dataset) - len(keep)
    return (dataset.select(keep) if removed else dataset), removed


def validation_mask(
    clusters: Sequence[int], groups: Sequence[str], fraction: float, seed: int
) -> list[bool]:
    """Which documents to hold out: whole units, drawn at random, until ``ceil(fraction * n)``.

    A unit is every document linked by a shared duplicate cluster or a shared non-empty group
    value (a company's CIK, say), so no validation document has a copy -- or a sibling, when
    grouping -- in training. Units that would overshoot the target are passed over; when every
    unit is too big, the smallest one is held out. Nothing is held out from fewer than two units.
    """
    from sec_cybert.corpus.dedup import DisjointSets

    n = len(clusters)
    if fraction <= 0 or n < 2:
        return [False] * n
    units = DisjointSets(list(range(n)))
    first: dict[tuple[str, Any], int] = {}
    for index, (cluster, group) in enumerate(zip(clusters, groups, strict=True)):
        for key in (("cluster", cluster), ("group", group)):
            if key[0] == "group" and not group:
                continue
            if key in first:
                units.union(first[key], index)
            else:
                first[key] = index
    members: dict[int, list[int]] = {}
    for index in range(n):
        members.setdefault(units.find(index), []).append(index)
    if len(members) < 2:
        return [False] * n
    order = sorted(members)
    random.Random(seed).shuffle(order)
    target = math.ceil(fraction * n)
    chosen: list[int] = []
    count = 0
    for root in order:
        if count >= target or len(chosen) == len(members) - 1:
            break  # training always keeps at least one unit
        if count + len(members[root]) <= target:
            chosen.append(root)
            count += len(members[root])
    if not chosen:
        chosen = [min(order, key=lambda root: len(members[root]))]
    held = {index for root in chosen for index in members[root]}
    return [index in held for index in range(n)]


def newest_first(
    dataset: datasets.Dataset,
    max_tokens: int | None,
    *,
    tokens_column: str = "n_tokens",
    date_column: str = "filing_date",
    id_column: str = "id",
) -> tuple[datasets.Dataset, SelectionSummary]:
    """Keep the newest documents whose tokens add up to at most ``max_tokens``.

    Documents are ordered by :func:`selection_order`: ``date_column`` (ISO dates, newest first;
    undated documents count as oldest, and are reported), then ``id_column``. Whole documents
    are kept until the next one would exceed the budget. ``max_tokens=None`` keeps everything,
    still newest first.
    """
    tokens = list(iter_column(dataset, tokens_column))
    dates = list(iter_column(dataset, date_column)) if date_column in dataset.column_names else [None] * len(dataset)
    ids = list(iter_column(dataset, id_column)) if id_column in dataset.column_names else None
    undated = sum(1 for d in dates if not d)
    order = selection_order(dates, ids)
    kept: list[int] = []
    total = 0
    for index in order:
        if max_tokens is not None and total + tokens[index] > max_tokens:
            break
        kept.append(index)
        total += tokens[index]
    kept_dates = [dates[i] for i in kept if dates[i]]
    summary = SelectionSummary(
        documents_in=len(dataset),
        documents_kept=len(kept),
        tokens_in=sum(tokens),
        tokens_kept=total,
        undated=undated,
        newest_kept=max(kept_dates) if kept_dates else None,
        oldest_kept=min(kept_dates) if kept_dates else None,
    )
    return dataset.select(kept), summary
