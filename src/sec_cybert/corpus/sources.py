"""Built-in corpus sources: JSONL shards (DAPT) and a JSONL file of paragraphs (TAPT).

Both read the reference's layout, one JSON object per line::

    {"id": "...", "text": "...", "metadata": {"filing_date": "2024-02-01", ...}}

The files are UTF-8; a byte-order mark is honoured (a UTF-8 BOM is dropped, a file marked UTF-16
or UTF-32 is read in that encoding: :func:`~sec_cybert.corpus.text_decode.iter_text_lines`).
Top-level keys other than the id and text fields are merged into the metadata. A record that
cannot be used (broken JSON, no text, text of the wrong type, metadata that is not a mapping)
either stops the run with a :class:`DataError` naming file and line (``on_bad_record="raise"``,
the default), or is skipped and counted in the :class:`ReadReport` (``on_bad_record="skip"``).

A directory that ``sec-cybert corpus build`` (or ``select``) is writing, or whose build was
killed, holds :data:`BUILD_MARKER` until its report is written; such a directory is refused, so a
part of a corpus is never read as the whole of it. A directory of shards written by hand (no
marker) is read as it is.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
from attrs import validators as v

from sec_cybert.core.components import Document, ReadReport
from sec_cybert.corpus.text_decode import iter_text_lines
from sec_cybert.errors import DataError

OnBadRecord = Literal["raise", "skip"]

#: Written first into a directory ``corpus build``/``corpus select`` writes, removed last (after
#: the report is written): while it is there, the shards may be only part of the corpus.
BUILD_MARKER = "BUILD-IN-PROGRESS.json"
#: The report each of those commands writes last, listing its shards.
BUILD_REPORTS = ("report.json", "selection.json")
#: Files ``corpus build`` writes beside its shards that are not documents.
BUILD_SIDE_FILES = ("skipped.jsonl",)


def check_build_finished(path: Path) -> None:
    """Refuse the shards in ``path`` (a directory, or a file in one) while a build of it is unfinished."""
    directory = path if path.is_dir() else path.parent
    marker = directory / BUILD_MARKER
    if not marker.exists():
        return
    try:
        written = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        written = {}
    written = written if isinstance(written, dict) else {}
    command = str(written.get("command") or "sec-cybert corpus build")
    rerun = str(written.get("rerun") or f"{command} ... --overwrite")
    raise DataError(
        f"{directory}: the `{command}` writing it did not finish ({BUILD_MARKER} is still there), so its "
        f"shards may be only part of the corpus; re-run `{rerun}` with the same options and let it finish"
    )


def _build_report(directory: Path) -> dict[str, Any] | None:
    for name in BUILD_REPORTS:
        try:
            report = json.loads((directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and isinstance(report.get("shards"), list):
            return report
    return None


def existing_path(instance, attribute, value: Path) -> None:
    if not Path(value).exists():
        raise DataError(
            f"{attribute.name} {str(value)!r} does not exist; check the path (relative paths start from the working directory)"
        )


def read_jsonl_documents(
    files: list[Path],
    report: ReadReport,
    *,
    text_field: str,
    id_field: str,
    min_chars: int,
    on_bad_record: OnBadRecord,
) -> Iterator[Document]:
    """Yield a Document per usable line of ``files``; count or raise on the rest."""
    for file in files:
        for line_number, raw in iter_text_lines(file):
            if not raw.strip():
                continue
            where = f"{file}:{line_number}"
            try:
                if isinstance(raw, str) and "\ufffd" in raw:
                    raise ValueError("not valid text in the encoding its byte-order mark names")
                record = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
                if not isinstance(record, dict):
                    raise ValueError("the line is JSON but not an object")
                text = record.get(text_field)
                if not isinstance(text, str):
                    raise ValueError(f"no string field {text_field!r}")
                if record.get("metadata") is not None and not isinstance(record["metadata"], Mapping):
                    raise ValueError(
                        f"'metadata' is {type(record['metadata']).__name__}, not a mapping of keys to values"
                    )
            except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                reason = (
                    "not UTF-8"
                    if isinstance(exc, UnicodeDecodeError)
                    else "malformed JSON"
                    if isinstance(exc, json.JSONDecodeError)
                    else str(exc)
                )
                if on_bad_record == "raise":
                    raise DataError(
                        f"{where}: {reason}. Fix the line, or set on_bad_record: skip to skip "
                        "and count such records"
                    ) from None
                report.skip(reason, where)
                continue
            if len(text) < min_chars:
                report.skip(f"shorter than min_chars={min_chars}", where)
                continue
            metadata = dict(record.get("metadata") or {})
            metadata.update(
                {k: val for k, val in record.items() if k not in (text_field, id_field, "metadata")}
            )
            report.kept += 1
            yield Document(
                id=str(record.get(id_field) or f"{file.stem}:{line_number}"), text=text, metadata=metadata
            )


@attrs.frozen
class JsonlShards:
    """A directory of ``*.jsonl`` shards (or one JSONL file): the DAPT corpus.

    ``min_chars`` filters short documents (the reference dropped cover-page-only filings under
    10,000 characters); each one filtered is counted in the report.
    """

    path: Path = attrs.field(converter=Path, validator=existing_path)
    pattern: str = "*.jsonl"
    text_field: str = "text"
    id_field: str = "id"
    min_chars: int = attrs.field(default=0, validator=v.ge(0))
    on_bad_record: OnBadRecord = attrs.field(default="raise", validator=v.in_(("raise", "skip")))
    #: Its documents are a function of its files' content and its settings alone: the
    #: tokenization cache keys them by those, without reading them (corpus/token_cache.py).
    documents_from_files: ClassVar[bool] = True

    def files(self) -> list[Path]:
        """The shard files, in order. Refuses a directory whose ``corpus build`` did not finish, and
        one whose report lists a shard that is missing; ``skipped.jsonl`` beside a build's shards is
        not a shard."""
        check_build_finished(self.path)
        if self.path.is_file():
            return [self.path]
        files = sorted(self.path.glob(self.pattern))
        report = _build_report(self.path)
        if report is not None:
            files = [f for f in files if f.name not in BUILD_SIDE_FILES]
            listed = [str(n) for n in report["shards"] if fnmatch.fnmatch(str(n), self.pattern)]
            missing = [n for n in listed if not (self.path / n).is_file()]
            if missing:
                raise DataError(
                    f"{self.path}: its build report lists {len(missing)} shard(s) that are missing "
                    f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); rebuild the corpus "
                    "with `sec-cybert corpus build --overwrite`"
                )
        if not files:
            raise DataError(
                f"no files matching {self.pattern!r} in {self.path}; is this the corpus directory?"
            )
        return files

    def iter_documents(self, report: ReadReport) -> Iterator[Document]:
        return read_jsonl_documents(
            self.files(),
            report,
            text_field=self.text_field,
            id_field=self.id_field,
            min_chars=self.min_chars,
            on_bad_record=self.on_bad_record,
        )

    def describe(self) -> str:
        return f"JSONL shards {self.path} ({self.pattern}, min_chars={self.min_chars})"


@attrs.frozen
class Paragraphs:
    """One JSONL file of paragraphs (the TAPT corpus); labels, if present, land in metadata."""

    path: Path = attrs.field(converter=Path, validator=existing_path)
    text_field: str = "text"
    id_field: str = "id"
    min_chars: int = attrs.field(default=1, validator=v.ge(0))
    on_bad_record: OnBadRecord = attrs.field(default="raise", validator=v.in_(("raise", "skip")))
    documents_from_files: ClassVar[bool] = True  # as JsonlShards's

    def iter_documents(self, report: ReadReport) -> Iterator[Document]:
        if not self.path.is_file():
            raise DataError(f"paragraphs path {self.path} is not a file; give the JSONL file of paragraphs")
        return read_jsonl_documents(
            [self.path],
            report,
            text_field=self.text_field,
            id_field=self.id_field,
            min_chars=self.min_chars,
            on_bad_record=self.on_bad_record,
        )

    def describe(self) -> str:
        return f"paragraphs {self.path}"
