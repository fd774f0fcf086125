"""10-K HTML / inline-XBRL → clean prose, one block (paragraph, heading, list item) per line.

What is removed, and why (see docs/corpus.md for the user-facing version):

* ``ix:header`` and every ``display:none`` element: hidden XBRL facts, contexts and units that
  no reader sees; stripped naively they become long runs of ids, dates and taxonomy URIs.
  Other ``ix:*`` tags are *unwrapped*, never deleted: FY2024+ filers wrap the whole Item 1C text
  in ``ix:nonNumeric``/``ix:continuation`` facts.
* Tables are decided row by row (:func:`_table_lines`): rows of prose (layout tables for
  bullets, side-by-side headings, footnotes) keep their text, one row per line; numeric rows
  (financial statements), table-of-contents rows and whole exhibit-index tables are dropped.
  Numbers cut from their row and column headers are noise for a language model.
* Page furniture (page numbers, ``F-12``, ``Page 3 of 90``, "Table of Contents" back-links,
  running headers/footers that repeat through the document), URLs, leader-dot TOC lines,
  exhibit listings and unbroken blobs (encoded data, XBRL ids).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

import attrs
import structlog

from sec_cybert.errors import OptionalDependencyError

log = structlog.get_logger(__name__)

# Elements after which text starts on a new line. Inline elements (span, font, a, b, i, ix:*)
# join without a separator, as a browser would render them.
_BLOCK_TAGS = (
    "p, div, br, tr, li, h1, h2, h3, h4, h5, h6, ul, ol, dl, dt, dd, section, article, "
    "blockquote, center, hr, pre, title, caption, header, footer, address, page"
)
_DROP_TAGS = "script, style, noscript, template, head, object, embed, ix\\:header, xbrl, xml"

_WS = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")
_CHECKBOXES = re.compile(r"[\u2610\u2611\u2612\u2713\u2714\u25a1\u25a0\u00fe]|(?<!\S)[\u00a8\u00fd](?!\S)")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.I)
_BLOB = re.compile(r"\S{64,}")

ITEM_HEADING = re.compile(r"^item\s*(\d{1,2})\s*([a-d])?(?![a-z0-9])\s*[.:\-\u2013\u2014]?", re.I)
PART_HEADING = re.compile(r"^part\s+(i{1,3}|iv|[1-4])\b\.?", re.I)

_PAGE_FURNITURE = re.compile(
    r"""^(?:
        [-\u2013\u2014(]?\s*\d{1,3}\s*[-\u2013\u2014)]?          # 12, - 12 -, (12)
      | [A-Z]{1,2}\s?-\s?\d{1,3}                               # F-12, S-3, II-4
      | page\s+\d{1,4}(?:\s+of\s+\d{1,4})?                     # Page 12, Page 12 of 90
      | [ivxlc]{1,6}                                           # roman page numbers
      | (?:back\ to\ |return\ to\ )?(?:table\ of\ contents|contents|index)
      | \d{1,3}\s*\|.{0,60} | .{0,60}\|\s*\d{1,3}                # "12 | Acme 2024 Form 10-K"
    )$""",
    re.I | re.X,
)
_TOC_LINE = re.compile(r"(?:\.{4,}|\u2026{2,}|\s)\s*(?:[A-Z]-)?\d{1,3}$")
_EXHIBIT_NUMBER = re.compile(
    r"^(?:exhibit\s+)?(?:\d{1,3}\.\d{1,3}(?:\.\d{1,3})?[a-z]?|10[14](?:\.[a-z]{2,3})?)[*\u2020\u2021#+]*$",
    re.I,
)
_EXHIBIT_LINE = re.compile(
    r"^(?:\d{1,3}\.\d{1,3}(?:\.\d{1,3})?[a-z]?|101\.[a-z]{2,3}|104)[*\u2020\u2021#+]*\s+.*"
    r"(?:incorporated\ by\ reference|form\ (?:8-k|10-k|10-q|s-\d)|certification|agreement|indenture|"
    r"inline\ xbrl|plan\b|by-?laws|articles\ of|consent\ of|power\ of\ attorney|subsidiaries)",
    re.I | re.X,
)
_NUMERIC_CELL = re.compile(r"^[\s$%()\-\u2013\u2014,.\d*\u2020x]*$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019\-]*")


@attrs.frozen
class CleanedFiling:
    """A filing's text and what cleaning found along the way (for reports, not for guessing)."""

    text: str
    dei: Mapping[str, str]
    encoding: str
    truncated: bool
    images: int
    table_rows_kept: int
    table_rows_dropped: int
    exhibit_rows_dropped: int
    item_headings: int

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n") if self.text else []


def _lexbor():
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise OptionalDependencyError("cleaning 10-K HTML", extra="corpus", package="selectolax") from exc
    return LexborHTMLParser


def decode_html(raw: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8, else as cp1252 (old EDGAR filings), never failing.

    Returns the text and the encoding used; ``"cp1252"`` means the file was not valid UTF-8.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"


def normalize_text(text: str) -> str:
    """Entities are already decoded by the parser; fold spaces, drop invisible and check-box glyphs."""
    text = _CHECKBOXES.sub(" ", _INVISIBLE.sub("", text))
    text = unicodedata.normalize("NFKC", text)
    return _WS.sub(" ", text).strip()


def is_item_heading(line: str) -> bool:
    return bool(ITEM_HEADING.match(line)) and len(line.split()) <= 14


def is_page_furniture(line: str) -> bool:
    return bool(_PAGE_FURNITURE.match(line))


def is_toc_line(line: str) -> bool:
    """An index line: an item/part heading or a leader-dot entry that ends with a page number."""
    if not _TOC_LINE.search(line) or len(line.split()) > 30:
        return False
    return bool(ITEM_HEADING.match(line) or PART_HEADING.match(line) or re.search(r"\.{4,}|\u2026{2,}", line))


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _row_cells(row) -> list[str]:
    cells = []
    for cell in row.iter(include_text=False):
        if cell.tag in ("td", "th"):
            value = normalize_text(cell.text(deep=True, separator=""))
            if value:
                cells.append(value)
    return cells


def _table_lines(table) -> tuple[list[str], int, int, bool]:
    """Lines a table contributes, rows dropped, and whether it is an exhibit index (all dropped)."""
    rows = [cells for cells in (_row_cells(tr) for tr in table.css("tr")) if cells]
    exhibit_rows = sum(1 for cells in rows if _EXHIBIT_NUMBER.match(cells[0]))
    if exhibit_rows >= 3 and exhibit_rows * 2 >= len(rows):
        return [], len(rows), True
    kept: list[str] = []
    for cells in rows:
        line = " ".join(cells)
        if is_toc_line(line):
            continue
        longest = max(cells, key=len)
        numeric = sum(1 for c in cells if c is not longest and _NUMERIC_CELL.match(c))
        heading = bool(ITEM_HEADING.match(line) or PART_HEADING.match(line)) and len(line.split()) <= 14
        if heading or (_words(longest) >= 8 and numeric <= 1):
            kept.append(line)
    return kept, len(rows) - len(kept), False


def _outermost(nodes: Iterable) -> list:
    out = []
    for node in nodes:
        parent = node.parent
        while parent is not None and parent.tag != "table":
            parent = parent.parent
        if parent is None:
            out.append(node)
    return out


def _dei_facts(tree) -> dict[str, str]:
    facts: dict[str, str] = {}
    for node in tree.css('[name^="dei:" i]'):
        if not node.tag.startswith("ix:"):
            continue
        name = node.attributes.get("name") or ""
        key = name.split(":", 1)[1]
        if key not in facts:
            value = normalize_text(node.text(deep=True, separator=""))
            if value:
                facts[key] = value
    return facts


def _filter_lines(lines: list[str]) -> list[str]:
    """Drop page furniture, TOC entries, exhibit listings and running headers/footers."""
    cleaned: list[str] = []
    for line in lines:
        line = _BLOB.sub(" ", _URL.sub(" ", line))
        line = _WS.sub(" ", line).strip()
        if not line or not any(ch.isalnum() for ch in line):
            continue
        if is_page_furniture(line) or is_toc_line(line) or _EXHIBIT_LINE.match(line):
            continue
        cleaned.append(line)
    # A running header/footer is a short line that recurs on many pages, often with the page
    # number in it; digits are masked so "Acme | 2024 Form 10-K | 12" and "... | 13" match.
    shape = [re.sub(r"\d+", "#", line.lower()) for line in cleaned]
    counts = Counter(s for s, line in zip(shape, cleaned, strict=True) if len(line.split()) <= 12)
    return [
        line
        for s, line in zip(shape, cleaned, strict=True)
        if counts.get(s, 0) < 3 or ITEM_HEADING.match(line) or PART_HEADING.match(line)
    ]


def clean_html(raw: bytes | str) -> CleanedFiling:
    """Clean one 10-K primary document. Never raises on malformed HTML; an empty result is valid."""
    if isinstance(raw, bytes):
        html, encoding = decode_html(raw)
    else:
        html, encoding = raw, "str"
    truncated = "</html" not in html[-4096:].lower()
    tree = _lexbor()(html)
    dei = _dei_facts(tree)
    images = len(tree.css("img"))

    for node in tree.css(_DROP_TAGS):
        node.decompose()
    # Check boxes drawn with a symbol font: the letters ("T", "¨", "x") are glyphs, not text.
    for node in tree.css('[style*="wingdings" i], [style*="webdings" i], font[face*="wingdings" i]'):
        node.decompose()
    for node in tree.css('[style*="none" i]'):
        style = (node.attributes.get("style") or "").replace(" ", "").lower()
        if "display:none" in style:
            node.decompose()

    rows_kept = rows_dropped = exhibit_rows = 0
    for table in _outermost(tree.css("table")):
        lines, dropped, exhibit = _table_lines(table)
        rows_kept += len(lines)
        rows_dropped += dropped
        exhibit_rows += dropped if exhibit else 0
        table.replace_with("\n" + "\n".join(lines) + "\n" if lines else "\n")

    # Layout spacing: "Item 1C." and "Cybersecurity" are separate spans kept apart by padding.
    for node in tree.css('[style*="padding-left" i], [style*="margin-left" i]'):
        node.insert_before(" ")
    for node in tree.css(_BLOCK_TAGS):
        node.insert_after("\n")

    root = tree.body or tree.root
    raw_text = root.text(deep=True, separator="") if root is not None else ""
    lines = _filter_lines([normalize_text(line) for line in raw_text.split("\n")])
    return CleanedFiling(
        text="\n".join(lines),
        dei=dei,
        encoding=encoding,
        truncated=truncated,
        images=images,
        table_rows_kept=rows_kept,
        table_rows_dropped=rows_dropped,
        exhibit_rows_dropped=exhibit_rows,
        item_headings=sum(1 for line in lines if is_item_heading(line)),
    )
