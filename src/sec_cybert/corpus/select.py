"""Corpus selection: exact-duplicate removal and a newest-first token budget.

The reference procedure subsampled "from the tail of the corpus" because its accession-sorted
shards were *roughly* chronological. We sort by the filing date itself, so shard order and
file naming cannot change which filings are kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
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


def text_fingerprint(text: str) -> str:
    """Hash of the text with whitespace runs collapsed: two copies that differ only in layout match."""
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=16).hexdigest()


def drop_exact_duplicates(
    dataset: datasets.Dataset, text_column: str = "text"
) -> tuple[datasets.Dataset, int]:
    """Keep the first occurrence of each text; return the dataset and how many copies were removed."""
    seen: set[str] = set()
    keep: list[int] = []
    for index, text in enumerate(dataset[text_column]):
        key = text_fingerprint(text)
        if key not in seen:
            seen.add(key)
            keep.append(index)
    removed = len(dataset) - len(keep)
    return (dataset.select(keep) if removed else dataset), removed


def newest_first(
    dataset: datasets.Dataset,
    max_tokens: int | None,
    *,
    tokens_column: str = "n_tokens",
    date_column: str = "filing_date",
) -> tuple[datasets.Dataset, SelectionSummary]:
    """Keep the newest documents whose tokens add up to at most ``max_tokens``.

    Documents are ordered by ``date_column`` (ISO dates, newest first; undated documents count
    as oldest, and are reported). Whole documents are kept until the next one would exceed the
    budget. ``max_tokens=None`` keeps everything, still newest first.
    """
    tokens = list(dataset[tokens_column])
    dates = list(dataset[date_column]) if date_column in dataset.column_names else [None] * len(dataset)
    undated = sum(1 for d in dates if not d)
    # Stable sort: documents with the same date keep their corpus order.
    order = sorted(range(len(dataset)), key=lambda i: dates[i] or "", reverse=True)
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
