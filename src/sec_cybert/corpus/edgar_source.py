"""Cached EDGAR HTML filings → cleaned Documents with their filing metadata.

Metadata comes, in this order, from the ``<file>.meta.json`` sidecar that ``corpus fetch``
writes (EDGAR's own index: accession, filing date, form, company), from the inline-XBRL ``dei:``
facts in the document, and from the file name (accession number, leading CIK). A field none of
them gives is ``None``: it is never guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import structlog

from sec_cybert.core.components import Document, ReadReport
from sec_cybert.corpus.html_clean import CleanedFiling, clean_html, html_parser
from sec_cybert.corpus.text_decode import decode_document, not_text_reason
from sec_cybert.errors import DataError, OptionalDependencyError

log = structlog.get_logger(__name__)

SIDECAR_SUFFIX = ".meta.json"
METADATA_KEYS = (
    "cik",
    "company",
    "form",
    "fiscal_year",
    "filing_date",
    "period_end",
    "accession",
    "source_file",
)
HTML_SUFFIXES = (".htm", ".html", ".xhtml")

_ACCESSION = re.compile(r"(\d{10})-?(\d{2})-?(\d{6})")
_LEADING_CIK = re.compile(r"^(?:CIK)?0*(\d{1,10})[_-]", re.I)
_DATE_FORMATS = ("%Y-%m-%d", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%m/%d/%Y", "%d %B %Y")


def sidecar_path(html_path: Path) -> Path:
    return html_path.with_name(html_path.name + SIDECAR_SUFFIX)


def iter_filing_paths(root: Path) -> list[Path]:
    """Every cached primary document under ``root`` (or ``root`` itself), in a stable order."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root}: no such directory; pass the --cache directory `corpus fetch` wrote")
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in HTML_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def iso_date(value: str | None) -> str | None:
    """An ISO ``YYYY-MM-DD`` date from the spellings EDGAR and dei facts use, else ``None``."""
    if not value:
        return None
    text = " ".join(value.replace(",", ", ").split()).replace(" ,", ",")
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _cik(value: Any) -> str | None:
    number = _int_or_none(value)
    return str(number) if number else None


def _accession(value: str | None) -> str | None:
    match = _ACCESSION.search(value or "")
    return "-".join(match.groups()) if match else None


def read_sidecar(html_path: Path) -> tuple[dict[str, Any], str | None]:
    """The sidecar's fields, and a warning when it exists but cannot be read."""
    path = sidecar_path(html_path)
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"unreadable sidecar {path.name}: {exc.__class__.__name__}"
    return (data if isinstance(data, dict) else {}), None


def filing_metadata(
    html_path: Path, root: Path, dei: dict[str, str], sidecar: dict[str, Any]
) -> dict[str, Any]:
    """Merge sidecar, dei facts and file name; missing fields are ``None``."""
    name_cik = _LEADING_CIK.match(html_path.name)
    try:
        source = str(html_path.relative_to(root)) if root.is_dir() else html_path.name
    except ValueError:
        source = html_path.name
    return {
        "cik": _cik(sidecar.get("cik"))
        or _cik(dei.get("EntityCentralIndexKey"))
        or (_cik(name_cik.group(1)) if name_cik else None),
        "company": sidecar.get("company") or dei.get("EntityRegistrantName"),
        "form": sidecar.get("form") or dei.get("DocumentType"),
        "fiscal_year": _int_or_none(sidecar.get("fiscal_year"))
        or _int_or_none(dei.get("DocumentFiscalYearFocus")),
        "filing_date": iso_date(sidecar.get("filing_date")),
        "period_end": iso_date(sidecar.get("report_date")) or iso_date(dei.get("DocumentPeriodEndDate")),
        "accession": _accession(sidecar.get("accession")) or _accession(html_path.name),
        "source_file": source,
    }


@attrs.frozen
class LoadedFiling:
    """One filing read and cleaned, or the reason it could not be."""

    source_file: str
    cleaned: CleanedFiling | None
    metadata: dict[str, Any]
    skip_reason: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def id_prefix(self) -> str:
        return self.metadata.get("accession") or Path(self.source_file).stem


def load_filing(path: Path, root: Path) -> LoadedFiling:
    """Read, decode and clean one filing. Never raises for a bad file: the reason is returned.

    The encoding comes from a byte-order mark (UTF-16 filings exist), else UTF-8, else cp1252;
    bytes that do not decode to text (an image, random data saved as ``.htm``) are skipped as
    "not text" instead of becoming a document of mojibake.
    """
    sidecar, sidecar_warning = read_sidecar(path)
    warnings = [sidecar_warning] if sidecar_warning else []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        meta = filing_metadata(path, root, {}, sidecar)
        return LoadedFiling(meta["source_file"], None, meta, f"unreadable file ({exc.__class__.__name__})")
    if not raw.strip():
        meta = filing_metadata(path, root, {}, sidecar)
        return LoadedFiling(meta["source_file"], None, meta, "empty file")
    html, encoding = decode_document(raw)
    if (not_text := not_text_reason(html)) is not None:
        meta = filing_metadata(path, root, {}, sidecar)
        return LoadedFiling(meta["source_file"], None, meta, not_text, tuple(warnings))
    try:
        cleaned = clean_html(html)
    except OptionalDependencyError:
        raise  # not this file's fault: every other file would fail the same way
    except DataError as exc:  # a filing the cleaner refuses, with the reason (e.g. HTML nested too deep)
        meta = filing_metadata(path, root, {}, sidecar)
        return LoadedFiling(
            meta["source_file"], None, meta, getattr(exc, "reason", str(exc)), tuple(warnings)
        )
    except Exception as exc:  # noqa: BLE001 - one malformed file must not stop a 15K-file build
        meta = filing_metadata(path, root, {}, sidecar)
        log.warning("clean_failed", file=str(path), error=repr(exc))
        return LoadedFiling(meta["source_file"], None, meta, f"cleaning failed ({exc.__class__.__name__})")
    meta = filing_metadata(path, root, dict(cleaned.dei), sidecar)
    if encoding == "cp1252":
        warnings.append("not valid UTF-8 (decoded as cp1252)")
    if cleaned.truncated:
        warnings.append("truncated HTML (no closing </html>)")
    return LoadedFiling(meta["source_file"], cleaned, meta, None, tuple(warnings))


def document_skip_reason(filing: LoadedFiling, min_chars: int) -> str | None:
    """Why a cleaned filing is not a corpus document, or ``None`` when it is one."""
    cleaned = filing.cleaned
    if cleaned is None:
        return filing.skip_reason
    size = len(cleaned.text)
    if size >= min_chars:
        return None
    if size < 500 and cleaned.images:
        return "image-only filing (no text layer)"
    if not cleaned.text:
        return "no text after cleaning"
    form = str(filing.metadata.get("form") or "")
    exhibits = cleaned.exhibit_rows_dropped or "exhibit" in cleaned.text.lower()
    if form.upper().startswith("EX-") or (cleaned.item_headings == 0 and exhibits):
        return "exhibit-only wrapper (no 10-K body)"
    return f"shorter than min_chars ({min_chars})"


def to_document(filing: LoadedFiling) -> Document:
    assert filing.cleaned is not None
    text = filing.cleaned.text
    return Document(id=filing.id_prefix, text=text, metadata={**filing.metadata, "n_chars": len(text)})


@attrs.frozen
class EdgarHtmlFilings:
    """CorpusSource: cleaned 10-K documents straight from a directory of cached EDGAR HTML filings.

    Filings shorter than ``min_chars`` after cleaning (cover-only amendments, exhibit wrappers,
    image-only scans) are skipped and counted in the report with their reason.
    """

    path: Path = attrs.field(converter=Path)
    min_chars: int = attrs.field(default=10_000, validator=attrs.validators.ge(0))

    @path.validator
    def _check_path(self, _attribute: attrs.Attribute, value: Path) -> None:
        if not value.exists():
            raise DataError(
                f"{value}: no such file or directory; point `path` at the HTML cache of `corpus fetch`"
            )

    def iter_documents(self, report: ReadReport) -> Iterator[Document]:
        html_parser()  # before the first file is read
        root = self.path
        for path in iter_filing_paths(root):
            filing = load_filing(path, root)
            for warning in filing.warnings:
                log.info("filing_warning", file=filing.source_file, warning=warning)
            reason = document_skip_reason(filing, self.min_chars)
            if reason is not None:
                report.skip(reason, filing.source_file)
                continue
            report.kept += 1
            yield to_document(filing)

    def describe(self) -> str:
        return f"EDGAR HTML filings under {self.path} (documents of at least {self.min_chars} chars)"
