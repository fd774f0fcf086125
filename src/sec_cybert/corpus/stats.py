"""The corpus table: documents, tokens, chars/token, median document length, long-document share.

For the paragraphs of ``corpus item1c`` it also shows how much of the Item 1C text that filings
tag themselves (inline-XBRL ``cyd`` text blocks) the extracted sections missed: each paragraph
carries its filing's counts (``cyd_tagged_words``, ``cyd_missed_words``), read once per filing.

Shards are read line by line (a broken line is counted, never fatal) and tokenized in batches
with the tokenizer's Rust backend, so a 1B-token corpus needs memory for one batch plus one
integer per document.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from sec_cybert.core.components import ReadReport
from sec_cybert.corpus.sources import check_build_finished, read_jsonl_documents
from sec_cybert.errors import ConfigError, DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = structlog.get_logger(__name__)


def shard_files(path: Path) -> list[Path]:
    """The shards at ``path``; refused while the build writing them is unfinished."""
    if path.exists():
        check_build_finished(path)
    if path.is_file():
        return [path]
    files = sorted(path.glob("shard-*.jsonl")) if path.is_dir() else []
    if not files:
        raise DataError(f"{path}: no shard-*.jsonl files; build them with `sec-cybert corpus build`")
    return files


def read_shards(path: Path, report: ReadReport) -> Iterator[dict[str, Any]]:
    """Records ``{"id", "text", "metadata"}`` from JSONL shards; bad lines are counted in ``report``."""
    documents = read_jsonl_documents(
        shard_files(path), report, text_field="text", id_field="id", min_chars=0, on_bad_record="skip"
    )
    for document in documents:
        yield {"id": document.id, "text": document.text, "metadata": dict(document.metadata)}


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--tokenizer {name_or_path!r} could not be loaded ({exc.__class__.__name__}); "
            "pass a local tokenizer directory or a hub name available offline"
        ) from exc


def token_counts(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens per text, without special tokens. Uses the Rust batch encoder when there is one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # A saved tokenizer.json may carry truncation/padding settings; counts must not be cut.
        if backend.truncation is not None:
            backend.no_truncation()
        if backend.padding is not None:
            backend.no_padding()
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        return [len(e.ids) for e in encode(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def iter_token_counts(
    records: Iterable[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, batch_size: int = 64
) -> Iterator[tuple[dict[str, Any], int]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= batch_size:
            yield from zip(batch, token_counts([r["text"] for r in batch], tokenizer), strict=True)
            batch = []
    if batch:
        yield from zip(batch, token_counts([r["text"] for r in batch], tokenizer), strict=True)


@attrs.frozen
class CorpusStats:
    """The reference's corpus table, plus what could not be read."""

    documents: int
    tokens: int
    chars: int
    chars_per_token: float
    median_document_tokens: float
    seq_len: int
    share_longer_than_seq_len: float
    sequences_at_seq_len: int
    tokenizer: str
    read_report: dict[str, Any]
    item1c_tag_check: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def table(self) -> str:
        rows = [
            ("documents", f"{self.documents:,}"),
            ("tokens", f"{self.tokens:,}"),
            ("chars/token", f"{self.chars_per_token:.2f}"),
            ("median document tokens", f"{self.median_document_tokens:,.0f}"),
            (f"documents > {self.seq_len} tokens", f"{self.share_longer_than_seq_len:.1%}"),
            (f"sequences at {self.seq_len}", f"{self.sequences_at_seq_len:,}"),
        ]
        tags = self.item1c_tag_check
        if tags:
            rows.append(
                (
                    "cyd-tagged Item 1C text missed",
                    f"{tags['missed_words']:,} of {tags['tagged_words']:,} words "
                    f"({tags['filings_missing_tagged_text']} of {tags['filings_tagged']} tagged filings)",
                )
            )
        skipped = self.read_report.get("skipped") or {}
        if skipped:
            rows.append(("lines skipped", ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def corpus_stats(
    path: Path, tokenizer: PreTrainedTokenizerBase, *, seq_len: int = 8192, tokenizer_name: str = ""
) -> CorpusStats:
    """Tokenize every document in the shards at ``path`` and summarise."""
    if seq_len < 1:
        raise ConfigError("--seq-len must be at least 1")
    report = ReadReport()
    counts: list[int] = []
    chars = 0
    tagged: dict[str, tuple[int, int]] = {}  # filing -> (tagged words, missed words)
    for record, n in iter_token_counts(read_shards(path, report), tokenizer):
        counts.append(n)
        chars += len(record["text"])
        _note_tag_check(record, tagged)
    if not counts:
        raise DataError(f"{path}: no readable documents ({report.as_dict()})")
    tokens = sum(counts)
    return CorpusStats(
        documents=len(counts),
        tokens=tokens,
        chars=chars,
        chars_per_token=chars / tokens if tokens else 0.0,
        median_document_tokens=float(statistics.median(counts)),
        seq_len=seq_len,
        share_longer_than_seq_len=sum(1 for n in counts if n > seq_len) / len(counts),
        # Documents are concatenated and cut into blocks (the DAPT chunker), so the count is the
        # corpus total over seq_len, not a per-document sum.
        sequences_at_seq_len=tokens // seq_len,
        tokenizer=tokenizer_name,
        read_report=report.as_dict(),
        item1c_tag_check=_tag_check_totals(tagged),
    )


def _note_tag_check(record: dict[str, Any], tagged: dict[str, tuple[int, int]]) -> None:
    metadata = record["metadata"]
    words, missed = metadata.get("cyd_tagged_words"), metadata.get("cyd_missed_words")
    if not isinstance(words, int) or not isinstance(missed, int):
        return
    filing = metadata.get("accession") or metadata.get("source_file") or str(record.get("id", ""))
    tagged.setdefault(str(filing), (words, missed))


def _tag_check_totals(tagged: dict[str, tuple[int, int]]) -> dict[str, int] | None:
    if not tagged:
        return None
    return {
        "filings_tagged": len(tagged),
        "filings_missing_tagged_text": sum(1 for _, missed in tagged.values() if missed),
        "tagged_words": sum(words for words, _ in tagged.values()),
        "missed_words": sum(missed for _, missed in tagged.values()),
    }
