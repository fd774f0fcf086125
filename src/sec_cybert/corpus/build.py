"""Build the DAPT corpus (JSONL shards) and the Item 1C paragraph file from cached HTML filings.

Files are cleaned in worker processes; at most ``window`` results are in flight, and every result
is written out before the next is taken, so memory stays flat however many filings there are.
Every file ends up in exactly one count: kept, or skipped with a reason (``skipped.jsonl`` lists
each one by name).

A build marks its directory first (``BUILD-IN-PROGRESS.json``) and unmarks it only after
``report.json`` is written, atomically: the shards of a killed build are refused by the readers
(:class:`~sec_cybert.corpus.sources.JsonlShards`, ``corpus stats``, ``corpus select``) with one line
saying to re-run it, never read as the whole corpus.
"""

from __future__ import annotations

import json
import os
import shlex
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs
import structlog

from sec_cybert.corpus.edgar_source import document_skip_reason, iter_filing_paths, load_filing, to_document
from sec_cybert.corpus.html_clean import html_parser
from sec_cybert.corpus.item1c import (
    DEFAULT_SEGMENT_OPTIONS,
    NoItem1C,
    SegmentOptions,
    find_item_1c,
    paragraph_documents,
)
from sec_cybert.corpus.sources import BUILD_MARKER, check_build_finished
from sec_cybert.corpus.tag_check import TagCheckTally, check_filing
from sec_cybert.corpus.worker_lifetime import die_with_parent
from sec_cybert.errors import ConfigError, DataError

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

SHARD_GLOB = "shard-*.jsonl"


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, window: int | None = None
) -> Iterator[R]:
    """``map`` over a process pool that keeps at most ``window`` tasks in flight, in input order.

    ``Executor.map`` submits every task up front and holds finished results until they are
    consumed; a bounded window keeps memory independent of the number of inputs. The workers
    die with this process, even when it is killed outright (:mod:`.worker_lifetime`).
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or workers * 4
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _progress(iterable: Iterable[T], total: int, enabled: bool, desc: str) -> Iterable[T]:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file")


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@attrs.define
class ShardWriter:
    """Writes ``shard-00000.jsonl`` ... with ``per_shard`` documents each; a shard is renamed in when full."""

    out_dir: Path
    per_shard: int
    names: list[str] = attrs.field(factory=list)
    _handle: IO[str] | None = None
    _count: int = 0

    def write(self, record: dict[str, Any]) -> None:
        if self._handle is None or self._count >= self.per_shard:
            self.close()
            name = f"shard-{len(self.names):05d}.jsonl"
            self.names.append(name)
            self._handle = (self.out_dir / (name + ".part")).open("w", encoding="utf-8")
            self._count = 0
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            name = self.names[-1]
            os.replace(self.out_dir / (name + ".part"), self.out_dir / name)
            self._handle = None


@attrs.frozen
class BuildSummary:
    """What ``build_shards`` kept and skipped; also written as ``report.json``."""

    files: int
    kept: int
    chars_kept: int
    skipped: dict[str, int]
    warnings: dict[str, int]
    shards: list[str]
    min_chars: int

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _build_worker(
    task: tuple[Path, Path, int],
) -> tuple[str, dict[str, Any] | None, str | None, tuple[str, ...]]:
    path, root, min_chars = task
    filing = load_filing(path, root)
    reason = document_skip_reason(filing, min_chars)
    if reason is not None:
        return filing.source_file, None, reason, filing.warnings
    doc = to_document(filing)
    return (
        filing.source_file,
        {"id": doc.id, "text": doc.text, "metadata": dict(doc.metadata)},
        None,
        filing.warnings,
    )


def _prepare_out_dir(out_dir: Path, overwrite: bool, *, command: str, rerun: str, report: str) -> Path:
    """Mark ``out_dir`` as being built, then clear what an earlier build left; the marker's path.

    The marker goes first, so a build killed at any point after this leaves a directory the
    readers refuse; ``_finish`` removes it once ``report`` is written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    old = sorted(out_dir.glob(SHARD_GLOB))
    marker = out_dir / BUILD_MARKER
    if old and not overwrite:
        unfinished = " from a build that did not finish" if marker.exists() else ""
        raise DataError(
            f"{out_dir} already holds {len(old)} shards{unfinished}; pass --overwrite or choose another --out"
        )
    _write_json_atomic(
        marker,
        {
            "command": command,
            "rerun": rerun,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "pid": os.getpid(),
            "note": f"removed when {report} is written; while it is here the shards are not a whole corpus",
        },
    )
    for path in [*old, *out_dir.glob(SHARD_GLOB + ".part"), out_dir / report]:
        path.unlink(missing_ok=True)
    return marker


def _finish(out_dir: Path, report: str, payload: Any, marker: Path) -> None:
    """Write the report atomically, then (and only then) remove the in-progress marker."""
    _write_json_atomic(out_dir / report, payload)
    marker.unlink()


def build_shards(
    html_dir: Path,
    out_dir: Path,
    *,
    min_chars: int = 10_000,
    docs_per_shard: int = 1000,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> BuildSummary:
    """Clean every filing under ``html_dir`` into ``out_dir/shard-*.jsonl`` plus ``report.json``."""
    html_parser()  # a missing extra is one error here, not every filing skipped as "cleaning failed"
    if docs_per_shard < 1 or min_chars < 0:
        raise ConfigError("docs_per_shard must be >= 1 and min_chars >= 0")
    paths = iter_filing_paths(html_dir)
    if not paths:
        raise DataError(f"{html_dir}: no .htm/.html files found; run `sec-cybert corpus fetch` first")
    marker = _prepare_out_dir(
        out_dir,
        overwrite,
        command="sec-cybert corpus build",
        rerun=f"sec-cybert corpus build --html {shlex.quote(str(html_dir))} --out {shlex.quote(str(out_dir))} --overwrite",
        report="report.json",
    )
    workers = workers or os.cpu_count() or 1
    writer = ShardWriter(out_dir, docs_per_shard)
    skipped: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    kept = chars = 0
    tasks = ((p, html_dir, min_chars) for p in paths)
    with (out_dir / "skipped.jsonl").open("w", encoding="utf-8") as skipped_log:
        results = ordered_map(_build_worker, tasks, workers=min(workers, len(paths)))
        for source, record, reason, file_warnings in _progress(results, len(paths), progress, "clean"):
            for warning in file_warnings:
                warnings[warning] += 1
                skipped_log.write(json.dumps({"file": source, "warning": warning}) + "\n")
            if record is None:
                skipped[str(reason)] += 1
                skipped_log.write(json.dumps({"file": source, "reason": reason}) + "\n")
                continue
            writer.write(record)
            kept += 1
            chars += len(record["text"])
        writer.close()
    summary = BuildSummary(len(paths), kept, chars, dict(skipped), dict(warnings), writer.names, min_chars)
    _finish(out_dir, "report.json", summary.as_dict(), marker)
    log.info("corpus_built", out=str(out_dir), kept=kept, skipped=sum(skipped.values()))
    return summary


@attrs.frozen
class Item1CSummary:
    """What ``build_item1c`` found; also written as ``<out>.report.json``."""

    filings: int
    with_item1c: int
    paragraphs: int
    without_item1c: dict[str, int]
    headings_dropped: int
    fragments_dropped: int
    artifacts_dropped: int
    unterminated_sections: int
    warnings: dict[str, int]
    tag_check: dict[str, Any] = attrs.field(factory=dict)  # against the filings' own cyd tags

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _item1c_worker(task: tuple[Path, Path, SegmentOptions]) -> dict[str, Any]:
    path, root, options = task
    filing = load_filing(path, root)
    result: dict[str, Any] = {"file": filing.source_file, "warnings": filing.warnings}
    if filing.cleaned is None:
        result["reason"] = filing.skip_reason
        return result
    section = find_item_1c(filing.cleaned.lines, options)
    check = check_filing(section, filing.cleaned, options)
    if check is not None:
        result["tag_check"] = check.as_dict()
    if isinstance(section, NoItem1C):
        result["reason"] = section.reason
        return result
    metadata = {**filing.metadata, **(check.metadata() if check else {})}
    docs = paragraph_documents(section, metadata, id_prefix=filing.id_prefix)
    if not docs:
        result["reason"] = "Item 1C section has no paragraph of prose"
        return result
    result["paragraphs"] = [{"id": d.id, "text": d.text, "metadata": dict(d.metadata)} for d in docs]
    result["counts"] = (
        section.headings_dropped,
        section.fragments_dropped,
        section.artifacts_dropped,
        0 if section.terminated else 1,
    )
    return result


def report_path_for(out_file: Path) -> Path:
    return out_file.with_name(out_file.stem + ".report.json")


def build_item1c(
    html_dir: Path,
    out_file: Path,
    *,
    options: SegmentOptions = DEFAULT_SEGMENT_OPTIONS,
    workers: int | None = None,
    progress: bool = False,
) -> Item1CSummary:
    """Write every filing's Item 1C paragraphs to ``out_file`` (JSONL), and a report beside it.

    Filings without a body Item 1C section are listed in ``<out>.missing.jsonl`` with the reason.
    """
    html_parser()
    paths = iter_filing_paths(html_dir)
    if not paths:
        raise DataError(f"{html_dir}: no .htm/.html files found; run `sec-cybert corpus fetch` first")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    missing: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    found = paragraphs = 0
    dropped = [0, 0, 0, 0]
    tag_check = TagCheckTally()
    tmp = out_file.with_name(out_file.name + ".part")
    missing_path = out_file.with_name(out_file.stem + ".missing.jsonl")
    tasks = ((p, html_dir, options) for p in paths)
    with tmp.open("w", encoding="utf-8") as out, missing_path.open("w", encoding="utf-8") as missing_log:
        results = ordered_map(_item1c_worker, tasks, workers=min(workers, len(paths)))
        for result in _progress(results, len(paths), progress, "item 1c"):
            for warning in result["warnings"]:
                warnings[warning] += 1
            tag_check.add(result["file"], result.get("tag_check"))
            if "reason" in result:
                missing[result["reason"]] += 1
                missing_log.write(json.dumps({"file": result["file"], "reason": result["reason"]}) + "\n")
                continue
            found += 1
            for record in result["paragraphs"]:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                paragraphs += 1
            dropped = [a + b for a, b in zip(dropped, result["counts"], strict=True)]
    os.replace(tmp, out_file)
    summary = Item1CSummary(
        len(paths), found, paragraphs, dict(missing), *dropped, dict(warnings), tag_check.as_dict()
    )
    _write_json_atomic(report_path_for(out_file), summary.as_dict())
    log.info("item1c_built", out=str(out_file), filings=len(paths), with_item1c=found, paragraphs=paragraphs)
    return summary


@attrs.frozen
class SelectionReport:
    """What ``select_corpus`` read, removed and kept; also written as ``selection.json``."""

    read: dict[str, Any]
    duplicates_removed: int
    selection: dict[str, Any]
    shards: list[str]

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def select_corpus(
    shards: Path,
    out_dir: Path,
    *,
    tokenizer: Any,
    max_tokens: int | None,
    dedupe: bool = True,
    docs_per_shard: int = 1000,
    overwrite: bool = False,
) -> SelectionReport:
    """Exact-duplicate removal, then the newest filings (by filing date) up to ``max_tokens``.

    Records are tokenized once and staged in an on-disk Arrow table, so memory does not grow
    with the corpus. ``n_tokens`` is added to each kept document's metadata.
    """
    import tempfile

    import datasets

    from sec_cybert.core.components import ReadReport
    from sec_cybert.corpus.select import document_date, drop_exact_duplicates, newest_first, selection_order
    from sec_cybert.corpus.stats import iter_token_counts, read_shards

    if max_tokens is not None and max_tokens < 1:
        raise ConfigError("--max-tokens must be a positive number of tokens")
    check_build_finished(Path(shards))  # before out_dir is touched: it may be the same directory
    marker = _prepare_out_dir(
        out_dir,
        overwrite,
        command="sec-cybert corpus select",
        rerun=f"sec-cybert corpus select {shlex.quote(str(shards))} --out {shlex.quote(str(out_dir))} --overwrite",
        report="selection.json",
    )
    report = ReadReport()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".select-") as tmp:
        staged = Path(tmp) / "staged.jsonl"
        with staged.open("w", encoding="utf-8") as handle:
            for record, n in iter_token_counts(read_shards(shards, report), tokenizer):
                row = {
                    "id": str(record.get("id", "")),
                    "text": record["text"],
                    "filing_date": document_date(record["metadata"]),
                    "n_tokens": n,
                    "metadata_json": json.dumps(record["metadata"], ensure_ascii=False),
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if not report.kept:
            raise DataError(f"{shards}: no readable documents to select from ({report.as_dict()})")
        # Typed: left to infer, a column of nothing but ISO dates would be read as timestamps.
        features = datasets.Features(
            {
                "id": datasets.Value("string"),
                "text": datasets.Value("string"),
                "filing_date": datasets.Value("string"),
                "n_tokens": datasets.Value("int64"),
                "metadata_json": datasets.Value("string"),
            }
        )
        dataset = datasets.Dataset.from_json(str(staged), features=features, cache_dir=str(Path(tmp) / "cache"))
        removed = 0
        if dedupe:
            # Of copies, keep the one the budget would reach first, so corpus order cannot decide.
            prefer = selection_order(dataset["filing_date"], dataset["id"])
            dataset, removed = drop_exact_duplicates(dataset, prefer=prefer)
        dataset, summary = newest_first(dataset, max_tokens)
        writer = ShardWriter(out_dir, docs_per_shard)
        for row in dataset:
            metadata = {**json.loads(row["metadata_json"]), "n_tokens": row["n_tokens"]}
            writer.write({"id": row["id"], "text": row["text"], "metadata": metadata})
        writer.close()
        del dataset  # release the memory-mapped Arrow files before the directory is removed
    result = SelectionReport(report.as_dict(), removed, summary.as_dict(), writer.names)
    _finish(out_dir, "selection.json", result.as_dict(), marker)
    log.info("corpus_selected", out=str(out_dir), kept=summary.documents_kept, tokens=summary.tokens_kept)
    return result
