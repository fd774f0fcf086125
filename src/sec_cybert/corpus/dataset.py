"""Read a CorpusSource into a ``datasets.Dataset``, in batches, counting what was skipped.

The documents are written to an Arrow file in the process's scratch directory as they are read
(:mod:`~sec_cybert.corpus.scratch`) and memory-mapped from there, so the corpus's text is never
held in memory whole; ``datasets`` then writes what is computed from it (the tokens) beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sec_cybert.core.components import ReadReport
from sec_cybert.corpus.select import document_date
from sec_cybert.errors import DataError

if TYPE_CHECKING:
    import datasets

    from sec_cybert.corpus.contamination import Exclusions

_BATCH = 1000
#: The columns of a documents dataset.
COLUMNS = ("id", "text", "filing_date", "group")
#: Characters of text read before a batch of documents is written out (and, through
#: :func:`text_batch_size`, handled at once downstream): whole filings average ~230K characters,
#: so a batch of 1,000 would hold ~230 MB of Python strings.
BATCH_CHARS = 4_000_000


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
    from datasets.arrow_writer import ArrowWriter

    from sec_cybert.corpus.scratch import scratch_path

    features = datasets.Features(dict.fromkeys(COLUMNS, datasets.Value("string")))
    path = scratch_path("documents")
    writer = ArrowWriter(features=features, path=str(path))
    try:
        rows = _write_documents(source, report, exclusions, group_field, writer)
    finally:
        writer.close()  # also when a bad record stops the read
    if not rows:
        skipped = (
            f" ({report.total_skipped} records skipped: {dict(report.skipped)})"
            if report.total_skipped
            else ""
        )
        raise DataError(
            f"corpus {source.describe()} yielded no documents{skipped}; check the path and filters"
        )
    return datasets.Dataset.from_file(str(path))


def _write_documents(
    source: Any, report: ReadReport, exclusions: Exclusions | None, group_field: str | None, writer: Any
) -> int:
    """Stream the source's documents into ``writer`` in batches of at most ``_BATCH`` documents
    or ``BATCH_CHARS`` characters; return how many were written."""
    batch: dict[str, list[str]] = {key: [] for key in COLUMNS}
    chars = rows = received = excluded = 0
    for position, document in enumerate(source.iter_documents(report)):
        received += 1  # the host counts what it receives: a source need not keep report.kept
        if exclusions is not None:
            where = document.id
            document = exclusions.apply(position, document)
            if document is None:
                excluded += 1
                report.skip("fine-tune evaluation text (excluded by the contamination check)", where)
                continue
        batch["id"].append(document.id)
        batch["text"].append(document.text)
        batch["filing_date"].append(document_date(document.metadata))
        group = document.metadata.get(group_field) if group_field else None
        batch["group"].append("" if group is None else str(group))
        chars += len(document.text)
        if len(batch["id"]) >= _BATCH or chars >= BATCH_CHARS:
            writer.write_batch(batch)
            rows += len(batch["id"])
            batch = {key: [] for key in batch}
            chars = 0
    if batch["id"]:
        writer.write_batch(batch)
        rows += len(batch["id"])
    writer.finalize()
    report.count_received(received, source=source.describe(), excluded=excluded)
    return rows


def text_batch_size(documents: datasets.Dataset, column: str = "text") -> int:
    """How many documents to handle at once so a batch holds about ``BATCH_CHARS`` characters
    (1,000 at most): a fixed count would make a batch of whole filings hundreds of MB."""
    import pyarrow.compute as pc

    if not len(documents) or column not in documents.column_names:
        return _BATCH
    # The mean over the underlying table (a selection's rows are a sample of it): offsets only.
    mean = pc.mean(pc.binary_length(documents.data.column(column))).as_py() or 1
    return max(1, min(_BATCH, int(BATCH_CHARS // mean)))
