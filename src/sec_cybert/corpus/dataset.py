"""Read a CorpusSource into a ``datasets.Dataset``, in batches, counting what was skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sec_cybert.components import ReadReport
from sec_cybert.corpus.select import document_date
from sec_cybert.errors import DataError

if TYPE_CHECKING:
    import datasets

_BATCH = 1000


def documents_dataset(
    source: Any, report: ReadReport, *, date_field: str = "filing_date"
) -> datasets.Dataset:
    """Columns ``id``, ``text`` and ``filing_date`` (ISO string, empty when unknown).

    Raises :class:`DataError` when the source yields nothing, saying how many records were
    skipped and why, since an empty corpus is never what a user meant.
    """
    import datasets

    parts: list[datasets.Dataset] = []
    batch: dict[str, list[str]] = {"id": [], "text": [], "filing_date": []}
    for document in source.iter_documents(report):
        batch["id"].append(document.id)
        batch["text"].append(document.text)
        batch["filing_date"].append(document_date(document.metadata))
        if len(batch["id"]) >= _BATCH:
            parts.append(datasets.Dataset.from_dict(batch))
            batch = {key: [] for key in batch}
    if batch["id"]:
        parts.append(datasets.Dataset.from_dict(batch))
    if not parts:
        skipped = (
            f" ({report.total_skipped} records skipped: {dict(report.skipped)})"
            if report.total_skipped
            else ""
        )
        raise DataError(
            f"corpus {source.describe()} yielded no documents{skipped}; check the path and filters"
        )
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
