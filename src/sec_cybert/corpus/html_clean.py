"""10-K HTML / inline-XBRL → clean prose, one block (paragraph, heading, list item) per line.

What is removed, and why (see docs/corpus.md for the user-facing version):

* ``ix:header`` and every ``display:none`` element: hidden XBRL facts, contexts and units that
  no reader sees; stripped naively they become long runs of ids, dates and taxonomy URIs.
  Other ``ix:*`` tags are *unwrapped*, never deleted: FY2024+ filers wrap the whole Item 1C text
  in ``ix:nonNumeric``/``ix:continuation`` facts. ``<html>`` and ``<body>`` are never removed
  (a stray ``<body style="display:none">`` would hide the whole filing).
* Tables (:func:`_table_lines`): a *prose table* (layout for bullets, side-by-side headings,
  two-column text: no row of figures, half its rows sentences or list items) keeps all its text,
  in reading order; any other table keeps only its sentence rows (footnotes) and item headings,
  so financial statements, table-of-contents rows and whole exhibit indexes are dropped.
  Numbers cut from their row and column headers are noise for a language model. A nested table
  is decided on its own rows, so its text comes out once, however deep it sits (past 32 levels,
  a table keeps all its text).
* Page furniture (page numbers, ``F-12``, ``Page 3 of 90``, "Table of Contents" back-links,
  running headers/footers that repeat through the document), URLs, leader-dot TOC lines,
  exhibit listings and unbroken blobs (encoded data, XBRL ids).

A filing nested deeper than 1,000 elements is refused before it is parsed (the parser's time grows
with the square of the nesting; :mod:`~sec_cybert.corpus.html_depth`), and everything after the
parse is linear in the size of the tree. The filing's own ``cyd`` Item 1C text blocks are read
into ``tagged_item1c`` for checking the extracted section (:mod:`~sec_cybert.corpus.xbrl_tags`).

Lines are blocks as a browser renders them: a line break in the HTML source is a space (except
in ``<pre>``), so a paragraph that a filing agent wrapped in its source stays one line.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping

import attrs
import structlog

from sec_cybert.corpus.html_depth import check_nesting
from sec_cybert.corpus.html_tables import index_tables
from sec_cybert.corpus.xbrl_tags import tagged_item1c_text
from sec_cybert.errors import OptionalDependencyError

log = structlog.get_logger(__name__)

# Elements after which text starts on a new line. Inline elements (span, font, a, b, i, ix:*)
# join without a separator, as a browser would render them.
_BLOCK_TAGS = (
    "p, div, br, tr, li, h1, h2, h3, h4, h5, h6, ul, ol, dl, dt, dd, section, article, "
    "blockquote, center, hr, pre, title, caption, header, footer, address, page"
)
_DROP_TAGS = "script, style, noscript, template, head, object, embed, ix\\:header, xbrl, xml"

# Every whitespace character but the line break, which separates blocks: the no-break and
# typographic spaces, and also the ones str.splitlines() breaks on (\x1c-\x1e, \x85, \u2028).
_WS = re.compile(r"[^\S\n]+")
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
    r"^(?:exhibit\s+)?(?:\d{1,3}\.\d{1,3}(?:\.\d{1,3})?[a-z]?|\d{1,3}\([a-z]{1,3}\)|10[14](?:\.[a-z]{2,3})?)[*\u2020\u2021#+]*$",
    re.I,
)
_EXHIBIT_LINE = re.compile(
    r"^(?:\d{1,3}\.\d{1,3}(?:\.\d{1,3})?[a-z]?|101\.[a-z]{2,3}|104)[*\u2020\u2021#+]*\s+.*"
    r"(?:incorporated\ by\ reference|form\ (?:8-k|10-k|10-q|s-\d)|certification|agreement|indenture|"
    r"inline\ xbrl|plan\b|by-?laws|articles\ of|consent\ of|power\ of\ attorney|subsidiaries)",
    re.I | re.X,
)
_NUMERIC_CELL = re.compile(r"^[\s$%()\-\u2013\u2014,.\d*\u2020x]*$")
# A list item's label in a cell of its own: a bullet glyph, "1.", "(a)", "iv)".
_MARKER = re.compile(
    r"^(?:[\u2022\u25cf\u25aa\u25a0\u2023\u2043\u2219\u00b7\u25e6o\-\u2013\u2014*]|\(?(?:\d{1,2}|[a-z]|[ivx]{1,4})[.)])$",
    re.I,
)
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
    # The filing's own ``cyd:*TextBlock`` text (FY2024+ iXBRL), one block a line, for checking the
    # extracted Item 1C against it; empty when the filing has no such tags.
    tagged_item1c: tuple[str, ...] = ()
    tagged_item1c_truncated: bool = False

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n") if self.text else []


def html_parser():
    """The HTML parser class; raises OptionalDependencyError without the ``corpus`` extra.

    Commands call it before any work starts, so a missing package is one clear error instead of
    every filing counted as "cleaning failed".
    """
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError as exc:
        raise OptionalDependencyError("cleaning 10-K HTML", extra="corpus", package="selectolax") from exc
    return LexborHTMLParser


def decode_html(raw: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8, else as cp1252 (old EDGAR filings), never failing.

    Returns the text and the encoding used; ``"cp1252"`` means the file was not valid UTF-8.
    A byte-order mark (UTF-8, UTF-16, UTF-32) is honoured: :mod:`~sec_cybert.corpus.text_decode`.
    """
    from sec_cybert.corpus.text_decode import decode_document

    return decode_document(raw)


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


_DROP, _JOIN, _CELLS = "drop", "join", "cells"  # what a row's own text becomes

# A line of a table cell, and whether a table nested in the cell has already decided it.
_Piece = tuple[str, bool]


@attrs.define
class _TableCounts:
    """Rows kept and dropped over every table of a filing, nested ones included; and the elements
    (by ``mem_id``) that hold a table, the only ones a cell's text is read from node by node."""

    kept: int = 0
    dropped: int = 0
    exhibit: int = 0
    holders: frozenset[int] = frozenset()

    def tally(self, rows: list[list[str]], modes: list[str], exhibit: bool) -> None:
        for cells, mode in zip(rows, modes, strict=True):
            if not cells:
                continue  # a row holding only a nested table is counted in that table
            if mode == _DROP:
                self.dropped += 1
                self.exhibit += int(exhibit)
            else:
                self.kept += 1


def _lines_of(raw: str) -> list[str]:
    return [line for line in (normalize_text(part) for part in raw.split("\n")) if line]


def _own_rows(table) -> Iterator:
    """The table's own rows, not those of a table nested in one of its cells."""
    for child in table.iter():
        if child.tag == "tr":
            yield child
        elif child.tag in ("thead", "tbody", "tfoot"):
            yield from (tr for tr in child.iter() if tr.tag == "tr")


# Tables nested deeper than this keep all their text, unread row by row: reading them would
# recurse once per level (malformed HTML can nest thousands deep; real filings, a few).
_MAX_TABLE_DEPTH = 32


def _flatten(node, counts: _TableCounts, depth: int) -> Iterator[str | list[str]]:
    """The raw text under ``node`` in order; a nested table is decided alone and comes as its lines.

    The walk keeps its own stack, so no depth of nesting between a cell and its table recurses.
    """
    stack = [iter((node,))]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif child.tag == "table":
            if depth < _MAX_TABLE_DEPTH:
                yield _table_lines(child, counts, depth + 1)
            else:
                yield _lines_of(child.text(deep=True, separator=""))
        elif child.tag == "-text" or child.mem_id not in counts.holders:
            yield child.text(deep=True, separator="")
        else:
            stack.append(child.iter(include_text=True))


def _cell_pieces(cell, counts: _TableCounts, depth: int) -> list[_Piece]:
    """A cell's lines (its blocks, ``<br>`` breaks) in reading order."""
    pieces: list[_Piece] = []
    raw: list[str] = []
    for part in _flatten(cell, counts, depth):
        if isinstance(part, str):
            raw.append(part)
            continue
        pieces += [(line, False) for line in _lines_of("".join(raw))]
        pieces += [(line, True) for line in part]
        raw = []
    return pieces + [(line, False) for line in _lines_of("".join(raw))]


def _own_text(cell: list[_Piece]) -> str:
    return " ".join(line for line, decided in cell if not decided)


def _is_heading_row(line: str) -> bool:
    return bool(ITEM_HEADING.match(line) or PART_HEADING.match(line)) and len(line.split()) <= 14


def _is_sentence_row(cells: list[str]) -> bool:
    """A cell of 8+ words and at most one other cell of figures: a footnote, not a data row."""
    longest = max(cells, key=len)
    numeric = sum(1 for c in cells if c is not longest and _NUMERIC_CELL.match(c))
    return _words(longest) >= 8 and numeric <= 1


def _is_marker_row(cells: list[str]) -> bool:
    return len(cells) >= 2 and bool(_MARKER.match(cells[0]))


def _is_numeric_row(cells: list[str]) -> bool:
    """Figures beside other cells: a financial or data row (a lone page number is not one)."""
    return len(cells) >= 2 and any(
        _NUMERIC_CELL.match(c) and any(ch.isdigit() for ch in c) and not _MARKER.match(c) for c in cells
    )


def _is_prose_table(rows: list[list[str]]) -> bool:
    """Layout for prose: no row of figures, and at least half the rows are prose.

    A prose row is a sentence, a list item, or part of a sentence wrapped over rows (it, or the
    row after it, goes on in lower case). Short rows of such a table (a bullet item, a
    sub-heading) belong to the text around them; in any other table they are labels cut from
    their figures.
    """
    if not rows or any(_is_numeric_row(cells) for cells in rows):
        return False
    lower = [cells[0][:1].islower() for cells in rows] + [False]
    prose = sum(
        1
        for i, cells in enumerate(rows)
        if _is_sentence_row(cells) or _is_marker_row(cells) or lower[i] or lower[i + 1]
    )
    return 2 * prose >= len(rows)


def _is_exhibit_index(rows: list[list[str]]) -> bool:
    exhibit_rows = sum(1 for cells in rows if _EXHIBIT_NUMBER.match(cells[0]))
    return exhibit_rows >= 3 and exhibit_rows * 2 >= len(rows)


def _row_mode(cells: list[str], prose: bool) -> str:
    """Drop the row's own text, join its cells into one line, or give each cell line its own."""
    line = " ".join(cells)
    if not cells or is_toc_line(line):
        return _DROP
    if _is_heading_row(line):
        return _JOIN  # "Item 1C." | "Cybersecurity" is one heading
    if prose:
        return _CELLS  # a sub-heading beside its prose, two columns of text: separate blocks
    # A footnote or signature row; a data table's column headers are 4+ cells of words.
    labels = sum(1 for c in cells if not _NUMERIC_CELL.match(c))
    return _JOIN if _is_sentence_row(cells) and labels <= 3 else _DROP


def _is_label(line: str) -> bool:
    """A list marker or a short run-in label ("Level 1:"): it reads as one line with what follows."""
    return bool(_MARKER.match(line)) or (line.endswith(":") and len(line.split()) <= 4)


def _emit(cells: list[list[_Piece]], mode: str) -> list[str]:
    """A row's lines. A label joins the text after it; nested tables' lines always come out."""
    lines: list[str] = []
    glue = False
    for cell in cells:
        for line, decided in cell:
            if decided:
                lines.append(line)
                glue = False
            elif mode != _DROP:
                if glue:
                    lines[-1] = f"{lines[-1]} {line}"
                else:
                    lines.append(line)
                glue = mode == _JOIN or _is_label(line)
    return lines


def _table_lines(table, counts: _TableCounts, depth: int = 0) -> list[str]:
    """The lines a table contributes, its rows decided on its own text (nested tables apart)."""
    rows = [
        [
            cell
            for cell in (_cell_pieces(c, counts, depth) for c in tr.iter() if c.tag in ("td", "th"))
            if cell
        ]
        for tr in _own_rows(table)
    ]
    texts = [[text for text in map(_own_text, cells) if text] for cells in rows]
    own = [cells for cells in texts if cells]
    exhibit = _is_exhibit_index(own)
    prose = not exhibit and _is_prose_table(own)
    modes = [_DROP if exhibit else _row_mode(cells, prose) for cells in texts]
    counts.tally(texts, modes, exhibit)
    return [line for cells, mode in zip(rows, modes, strict=True) for line in _emit(cells, mode)]


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


def _remove(node) -> None:
    """Delete an element and its subtree, but never ``<html>`` or ``<body>``: a stray second
    ``<html style="display:none">`` or ``<body ...>`` tag anywhere lends them its style (the
    parser cannot delete the root at all), and hiding the whole filing for it loses every line."""
    parent = node.parent
    if parent is None or parent.tag == "-document" or (node.tag == "body" and parent.tag == "html"):
        return
    node.decompose()


# Elements whose line breaks are rendered as written (an unclosed one runs to the end).
_PREFORMATTED = re.compile(r"<(pre|listing|xmp|textarea)\b.*?(?:</\1\s*>|\Z)", re.I | re.S)


def _source_breaks_to_spaces(html: str) -> str:
    """A line break in the HTML source renders as a space (outside ``<pre>``): only block elements
    and ``<br>`` start a new line. Filing agents wrap long source lines inside paragraphs, and a
    break kept as a line would cut the paragraph in two blocks.
    """
    out: list[str] = []
    last = 0
    for match in _PREFORMATTED.finditer(html):
        out += [html[last : match.start()].translate(_BREAKS), match.group()]
        last = match.end()
    out.append(html[last:].translate(_BREAKS))
    return "".join(out)


_BREAKS = {ord("\n"): " ", ord("\r"): " "}


def clean_html(raw: bytes | str) -> CleanedFiling:
    """Clean one 10-K primary document. Never raises on malformed HTML; an empty result is valid."""
    if isinstance(raw, bytes):
        html, encoding = decode_html(raw)
    else:
        html, encoding = raw, "str"
    check_nesting(html)  # before parsing: the parser's time grows with the square of the depth
    truncated = "</html" not in html[-4096:].lower()
    tree = html_parser()(_source_breaks_to_spaces(html))
    dei = _dei_facts(tree)
    images = len(tree.css("img"))

    for node in tree.css(_DROP_TAGS):
        _remove(node)
    # Check boxes drawn with a symbol font: the letters ("T", "¨", "x") are glyphs, not text.
    for node in tree.css('[style*="wingdings" i], [style*="webdings" i], font[face*="wingdings" i]'):
        _remove(node)
    for node in tree.css('[style*="none" i]'):
        style = (node.attributes.get("style") or "").replace(" ", "").lower()
        if "display:none" in style:
            _remove(node)

    # Layout spacing: "Item 1C." and "Cybersecurity" are separate spans kept apart by padding.
    # Done before tables are read, so that blocks inside a cell stay apart too.
    for node in tree.css('[style*="padding-left" i], [style*="margin-left" i]'):
        node.insert_before(" ")
    for node in tree.css(_BLOCK_TAGS):
        node.insert_after("\n")
    tagged, tagged_truncated = tagged_item1c_text(tree)  # before tables are turned into lines

    tables = index_tables(tree.css("table"))
    counts = _TableCounts(holders=tables.holders)
    for table in tables.outermost:
        lines = _table_lines(table, counts)
        table.replace_with("\n" + "\n".join(lines) + "\n" if lines else "\n")

    root = tree.body or tree.root
    raw_text = root.text(deep=True, separator="") if root is not None else ""
    lines = _filter_lines([normalize_text(line) for line in raw_text.split("\n")])
    return CleanedFiling(
        text="\n".join(lines),
        dei=dei,
        encoding=encoding,
        truncated=truncated,
        images=images,
        table_rows_kept=counts.kept,
        table_rows_dropped=counts.dropped,
        exhibit_rows_dropped=counts.exhibit,
        item_headings=sum(1 for line in lines if is_item_heading(line)),
        tagged_item1c=tuple(_tagged_lines(tagged)),
        tagged_item1c_truncated=tagged_truncated,
    )


def _tagged_lines(text: str) -> Iterator[str]:
    """The tagged text's lines, normalised like the filing's own (URLs and blobs out too)."""
    for raw in text.split("\n"):
        line = _WS.sub(" ", _BLOB.sub(" ", _URL.sub(" ", normalize_text(raw)))).strip()
        if line:
            yield line
