"""A company's filings from EDGAR's submissions index, read defensively.

The index (``CIK##########.json``) is columnar, holds the last ~1000 filings under ``recent`` and
points to older pages. A malformed index is one failure for that company; a malformed older page
or row is listed by name while the rest is used, and names that are not plain accession numbers or
file names never reach the cache. Tickers are resolved through ``company_tickers.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from sec_cybert.corpus.edgar_client import EdgarClient, EdgarEndpoints, FetchError
from sec_cybert.errors import ConfigError, DataError

_ACCESSION_NUMBER = re.compile(r"\d{10}-\d{2}-\d{6}")
_DOCUMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@attrs.frozen
class FilingRef:
    """One filing from a company's submissions index."""

    cik: int
    company: str | None
    form: str
    accession: str
    filing_date: str | None
    report_date: str | None
    primary_document: str

    def file_name(self) -> str:
        form = re.sub(r"[^A-Za-z0-9]+", "", self.form)
        year = (self.report_date or "")[:4] or "unknown"
        suffix = Path(self.primary_document).suffix.lower() or ".htm"
        return f"{self.cik}_{form}_{year}_{self.accession}{suffix}"

    def sidecar(self) -> dict[str, Any]:
        return {
            "cik": str(self.cik),
            "company": self.company,
            "form": self.form,
            "accession": self.accession,
            "filing_date": self.filing_date,
            "report_date": self.report_date,
            "fiscal_year": None,  # EDGAR's index does not say; build reads dei:DocumentFiscalYearFocus
            "primary_document": self.primary_document,
        }


def resolve_tickers(client: EdgarClient, endpoints: EdgarEndpoints, tickers: Sequence[str]) -> list[int]:
    """Ticker symbols → CIKs with EDGAR's company_tickers.json; unknown tickers are a ConfigError.

    The file is fetched only when there are tickers to resolve. A malformed file is one DataError:
    without it the tickers cannot be resolved, and ``--ciks`` does not need it.
    """
    wanted = [t.strip().upper() for t in tickers if t.strip()]
    if not wanted:
        return []
    try:
        table = client.get_json(endpoints.tickers_url)
    except FetchError as exc:
        raise FetchError(
            f"{exc}; --tickers cannot be resolved without it: retry later, or pass --ciks"
        ) from None
    rows = table.values() if isinstance(table, dict) else table
    by_ticker: dict[str, int] = {}
    try:
        for row in rows:
            if "cik_str" in row:
                by_ticker[str(row.get("ticker", "")).upper()] = int(row["cik_str"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise DataError(
            f"{endpoints.tickers_url}: company_tickers.json is malformed ({exc.__class__.__name__}: {exc}); "
            "retry later, or pass the companies as --ciks instead of --tickers"
        ) from None
    unknown = [t for t in wanted if t not in by_ticker]
    if unknown:
        raise ConfigError(
            f"unknown ticker(s) {', '.join(unknown)} in EDGAR's company_tickers.json; check the symbols"
        )
    return [by_ticker[t] for t in wanted]


class MalformedIndex(Exception):
    """A submissions index (or page of one) is not shaped as EDGAR documents it."""


_COLUMNS = ("accessionNumber", "filingDate", "reportDate", "form", "primaryDocument")


def _rows(block: Any, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) of a columnar block; a block not shaped so is MalformedIndex."""
    if not isinstance(block, dict):
        raise MalformedIndex(f"{where} is {type(block).__name__}, not a JSON object")
    values = [block.get(c) or [] for c in _COLUMNS]
    for column, value in zip(_COLUMNS, values, strict=True):
        if not isinstance(value, list):
            raise MalformedIndex(f"{where}.{column} is {type(value).__name__}, not a list")
    lengths = {len(v) for v in values if v}
    if len(lengths) > 1:
        raise MalformedIndex(
            f"{where} has columns of different lengths "
            f"({', '.join(f'{c}: {len(v)}' for c, v in zip(_COLUMNS, values, strict=True))})"
        )
    rows = max(lengths, default=0)
    # A column left out altogether is empty in every row (each row is then checked on its own).
    values = [v or [None] * rows for v in values]
    for number, row in enumerate(zip(*values, strict=True)):
        yield number, dict(zip(_COLUMNS, row, strict=True))


def _row_problem(row: dict[str, Any]) -> str | None:
    accession, document = row.get("accessionNumber"), row.get("primaryDocument")
    if not isinstance(accession, str) or not _ACCESSION_NUMBER.fullmatch(accession):
        return f"accession number {accession!r} is not of the form 0000000000-00-000000"
    if not isinstance(document, str) or not _DOCUMENT_NAME.fullmatch(document):
        return f"primary document {document!r} is not a plain file name"
    for key in ("filingDate", "reportDate"):
        if row.get(key) is not None and not isinstance(row.get(key), str):
            return f"{key} {row.get(key)!r} is not a date string"
    return None


@attrs.frozen
class FilingListing:
    """A company's wanted filings, and what of its index could not be read (name -> reason)."""

    refs: list[FilingRef]
    failed: dict[str, str]


def list_filings(
    client: EdgarClient,
    endpoints: EdgarEndpoints,
    cik: int,
    forms: Sequence[str],
    years: tuple[int, int],
) -> FilingListing:
    """This company's filings of ``forms`` whose period of report falls in ``years``.

    An index that cannot be fetched or is malformed raises FetchError; an older page that cannot,
    and a malformed row, are listed in ``failed`` while the rest of the index is used.
    """
    index_name = f"CIK{cik:010d}.json"
    url = endpoints.submissions(cik)
    data = client.get_json(url)
    failed: dict[str, str] = {}
    try:
        if not isinstance(data, dict):
            raise MalformedIndex(f"the index is {type(data).__name__}, not a JSON object")
        company = data.get("name") if isinstance(data.get("name"), str) else None
        filings = data.get("filings") or {}
        if not isinstance(filings, dict):
            raise MalformedIndex("filings is not a JSON object")
        blocks: list[tuple[str, Any]] = [("recent", filings.get("recent") or {})]
        pages = filings.get("files") or []
        if not isinstance(pages, list):
            raise MalformedIndex("filings.files is not a list")
        # "recent" holds only the last ~1000 filings; older ones are in extra pages. Pages that end
        # before the first wanted year cannot hold its filings (a filing follows its period end).
        for number, page in enumerate(pages):
            if not isinstance(page, dict) or not (
                isinstance(page.get("name"), str) and _DOCUMENT_NAME.fullmatch(page["name"])
            ):
                raise MalformedIndex(f"filings.files[{number}] has no file name: {page!r}")
            if str(page.get("filingTo", "9999")) >= f"{years[0]}-01-01":
                try:
                    blocks.append((page["name"], client.get_json(endpoints.submissions_page(page["name"]))))
                except FetchError as exc:
                    failed[page["name"]] = str(exc)
        wanted = {f.upper() for f in forms}
        found: dict[str, FilingRef] = {}
        for block_name, block in blocks:
            where = "filings.recent" if block_name == "recent" else block_name
            try:
                rows = list(_rows(block, where))
            except MalformedIndex as exc:
                if block_name == "recent":
                    raise
                failed[block_name] = (
                    f"{endpoints.submissions_page(block_name)}: malformed submissions page ({exc})"
                )
                continue
            for number, row in rows:
                year = str(row.get("reportDate") or "")[:4]
                if str(row.get("form", "")).upper() not in wanted or not row.get("primaryDocument"):
                    continue
                if not year.isdigit() or not years[0] <= int(year) <= years[1]:
                    continue
                if (problem := _row_problem(row)) is not None:
                    if block_name == "recent":
                        key, source = f"{index_name} recent[{number}]", url
                    else:
                        key, source = f"{block_name}[{number}]", endpoints.submissions_page(block_name)
                    failed[key] = f"{source}: malformed row ({problem})"
                    continue
                ref = FilingRef(
                    cik=cik,
                    company=company,
                    form=str(row["form"]),
                    accession=row["accessionNumber"],
                    filing_date=row.get("filingDate") or None,
                    report_date=row.get("reportDate") or None,
                    primary_document=row["primaryDocument"],
                )
                found.setdefault(ref.accession, ref)
    except MalformedIndex as exc:
        raise FetchError(f"{url}: malformed submissions index ({exc})") from None
    return FilingListing(list(found.values()), failed)
