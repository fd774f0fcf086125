"""Read a CorpusSource into a ``datasets.Dataset``, in batches, counting what was skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sec_cybert.components import ReadReport
from sec_cybert.corpus.select import document_date
from sec_cybert.errors import DataError

if TYPE_CHECKING:
    import datasets

    from sec_cybert.corpus.contamination import Exclusions

_BATCH = 1000


def documents_dataset(
    source: Any,
    report: ReadReport,
    *,
    exclusions: Exclusions | None = None,
    group_field: str | None = None,
) -> datasets.Dataset:
    """Columns ``id``, ``text``, ``filing_date`` (ISO, empty when unknown) and ``group``.

    ``exclusions`` (from the contamination check) remove whole documents or lines inside them,
    by their position in the source; removed documents are counted in ``report``. ``group`` is
    the metadata value ``group_field`` names (e.g. ``cik``: a validation split then holds out
    whole companies), or empty.

    Raises :class:`DataError` when the source yields nothing, saying how many records were
    skipped and why, since an empty corpus is never what a user meant.
    """
    import datasets

    parts: list[datasets.Dataset] = []
    batch: dict[str, list[str]] = {"id": [], "text": [], "filing_date": [], "group": []}
    for position, document in enumerate(source.iter_documents(report)):
        if exclusions is not None:
            where = document.id
            document = exclusions.apply(position, document)
            if document is None:
                report.kept -= 1
                report.skip("fine-tune evaluation text (excluded by the contamination check)", where)
                continue
        batch["id"].append(document.id)
        batch["text"].append(document.text)
        batch["filing_date"].append(document_date(document.metadata))
        group = document.metadata.get(group_field) if group_field else None
        batch["group"].append("" if group is None else str(group))
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
