"""Find the body "Item 1C. Cybersecurity" section of a cleaned 10-K and cut it into paragraphs.

A filing names Item 1C up to three times: in the table of contents, in the body, and sometimes in
a cross-reference index at the end. Every line that *starts* with an Item 1C heading is a
candidate; each candidate's section runs to the next item heading, and the candidate with the
most prose wins. A TOC line is followed at once by the next TOC entry, so it has none. When no
candidate has prose the filing is reported as having no Item 1C; nothing is guessed. A heading
laid out in two cells or blocks ("ITEM 1C" above "CYBERSECURITY") is one heading.

Annual-report-style 10-Ks print the part and item at the top of every page ("PART I" above
"ITEM 1C. CYBERSECURITY"). Inside the section such a repeat of its own heading, or a bare
"PART I" (Item 1C is in Part I, so that is never the start of the next part), is page furniture:
it is dropped and counted, and the section reads on. A candidate inside a section already read is
therefore a repeat too, and is not read again: every line is read once, however many repeats.

A lead-in sentence ("Our program includes:") is kept with the list it introduces: short list
items join it, and before items long enough to be paragraphs of their own it is a paragraph of its
own, however short.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import structlog

from sec_cybert.core.components import Document
from sec_cybert.corpus.html_clean import PART_HEADING, is_item_heading, is_page_furniture, is_toc_line

log = structlog.get_logger(__name__)

_TITLE = r"\(?\s*cyber\s*-?\s*security\s*\)?\s*[.:\-\u2013\u2014]*"
# "(?=cyber)": spans set side by side without a space ("ITEM 1CCYBERSECURITY") are still the heading.
ITEM_1C = re.compile(
    rf"^item\s*1\s*c(?=cyber|[^a-z0-9]|$)\s*[.:\-\u2013\u2014)]*\s*(?:{_TITLE})?\s*",
    re.I,
)
_TITLE_LINE = re.compile(rf"^{_TITLE}$", re.I)
_TERMINAL = (".", "!", "?", ":", ";", "\u201d", '"', ")", "\u2019")
_BULLET = re.compile(r"^[\u2022\u25cf\u25aa\u25a0\u2023\u2043\u2219\u00b7\u25e6o\-\u2013*]$")
# A glyph in its own inline-block span comes out glued to its text ("\u2022risk assessments").
_GLUED_GLYPH = re.compile(r"^([\u2022\u25cf\u25aa\u25a0\u2023\u2043\u2219\u25e6])(?=\w)")
# "PART I" (or "PART I | ITEM 1C. CYBERSECURITY") at the top of a page of Item 1C.
_PART_ONE = re.compile(r"^part\s+(?:i|1)(?![a-z0-9])\s*[.:,|\-\u2013\u2014]*\s*", re.I)
_CONTINUED = re.compile(r"^\(?\s*continued\s*\)?$", re.I)
_WORD = re.compile(r"[^\W\d_][\w'\u2019\-]*")
_RUNNING_HEADER = re.compile(r"form\s+10-?k|annual\s+report", re.I)
_CONNECTORS = {
    "a",
    "an",
    "and",
    "as",
    "at",
    "by",
    "for",
    "from",
    "in",
    "including",
    "of",
    "on",
    "or",
    "our",
    "such",
    "that",
    "the",
    "to",
    "with",
    "which",
    "who",
    "whose",
    "its",
    "their",
}


@attrs.frozen
class SegmentOptions:
    """How paragraphs are cut. ``min_words`` drops headings and stray fragments."""

    min_words: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    max_section_chars: int = attrs.field(default=60_000, validator=attrs.validators.ge(1000))
    min_section_chars: int = attrs.field(default=200, validator=attrs.validators.ge(1))


DEFAULT_SEGMENT_OPTIONS = SegmentOptions()


@attrs.frozen
class Item1CSection:
    """The section found in one filing: its paragraphs and what was left out, counted."""

    heading: str
    paragraphs: tuple[str, ...]
    headings_dropped: int
    fragments_dropped: int
    artifacts_dropped: int
    terminated: bool  # False when no next item heading closed the section (cut at max_section_chars)


@attrs.frozen
class NoItem1C:
    """Why a filing has no usable Item 1C section."""

    reason: str


def _starts_item_1c(line: str) -> bool:
    return bool(ITEM_1C.match(line))


def _ends_section(line: str) -> bool:
    if _starts_item_1c(line):
        return False
    return is_item_heading(line) or (bool(PART_HEADING.match(line)) and len(line.split()) <= 8)


def _prose_chars(lines: Sequence[str]) -> int:
    return sum(len(line) for line in lines if len(line.split()) >= 8)


def _page_heading(lines: Sequence[str], index: int) -> tuple[int, str] | None:
    """A running page header at ``index`` inside the section: how many lines it takes, and any
    text after it on its line; ``None`` when the line is not one."""
    line = lines[index]
    part = _PART_ONE.match(line)
    rest = line[part.end() :] if part else line
    if part and not rest:
        return 1, ""
    if not _starts_item_1c(rest):
        return None
    _heading, after, next_line = _split_heading(lines, index, rest)
    text = " ".join(after)
    return next_line - index, "" if _CONTINUED.match(text) else text


def _read_section(
    lines: Sequence[str], start: int, options: SegmentOptions
) -> tuple[str, list[str], bool, int, int]:
    """The section whose heading is at ``start``: heading, body lines, whether an item heading
    closed it, the lines of page headers dropped from it, and the index where reading stopped."""
    heading, body, index = _split_heading(lines, start)
    size, repeats = sum(map(len, body)), 0
    while index < len(lines):
        page_heading = _page_heading(lines, index)
        if page_heading is not None:
            taken, after = page_heading
            repeats += taken
            index += taken
            if after:
                body.append(after)
                size += len(after)
            continue
        line = lines[index]
        if _ends_section(line):
            return heading, body, True, repeats, index
        body.append(line)
        size += len(line)
        index += 1
        if size > options.max_section_chars:
            break
    return heading, body, False, repeats, index


def find_item_1c(
    lines: Sequence[str], options: SegmentOptions = DEFAULT_SEGMENT_OPTIONS
) -> Item1CSection | NoItem1C:
    """Locate the body Item 1C section in cleaned lines (one block per line)."""
    candidates = [i for i, line in enumerate(lines) if _starts_item_1c(line)]
    if not candidates:
        return NoItem1C("no Item 1C heading")
    best: tuple[int, str, list[str], bool, int] | None = None
    read_up_to = -1
    for start in candidates:
        if start < read_up_to:
            continue  # a page header inside the section just read, dropped there
        heading, body, terminated, repeats, read_up_to = _read_section(lines, start, options)
        score = _prose_chars(body)
        if best is None or score > best[0]:
            best = (score, heading, body, terminated, repeats)
    assert best is not None
    score, heading, body, terminated, repeats = best
    if score < options.min_section_chars:
        return NoItem1C("Item 1C heading only in the table of contents or an index (no section body)")
    return _segment(heading, body, terminated, options, page_headings=repeats)


def _split_heading(lines: Sequence[str], start: int, line: str | None = None) -> tuple[str, list[str], int]:
    """The heading at ``start``, the text after it on its line, and the index of the next line.

    A bare "Item 1C." line takes a "Cybersecurity" line after it into the heading: the two were
    separate cells or blocks. Only the title is taken, so a TOC entry stays without a body.
    ``line`` is the line's text from the heading on, when something (a part label) precedes it.
    """
    line = lines[start] if line is None else line
    after = ITEM_1C.sub("", line, count=1)
    heading, rest = line[: len(line) - len(after)].strip(), after.strip()
    if not rest and start + 1 < len(lines) and _TITLE_LINE.match(lines[start + 1]):
        return f"{heading} {lines[start + 1]}", [], start + 2
    return heading, [rest] if rest else [], start + 1


def _should_merge(previous: str, line: str) -> bool:
    """A block boundary inside a sentence: a page break or a layout line break."""
    if _BULLET.match(previous):
        return True
    if line[:1] in ",;:.)":
        return True
    if _starts_bullet(line) or previous.endswith(_TERMINAL):
        return False
    if previous.endswith((",", "-", "\u2013")):
        return True
    first = line[:1]
    if first.islower():
        return True
    last_word = previous.rsplit(" ", 1)[-1].lower()
    return last_word in _CONNECTORS


def _starts_bullet(line: str) -> bool:
    return bool(_BULLET.match(line[:1])) and not line[:1].isalnum() or line.startswith("o ")


def is_lead_in(text: str) -> bool:
    """A sentence that introduces a list ("Our program includes:"), not a run-in heading
    ("Risk Management and Strategy:"): it ends with a colon and its words are mostly lower case."""
    if not text.endswith(":"):
        return False
    words = _WORD.findall(text)
    capitalised = sum(1 for word in words[1:] if word[:1].isupper())
    return len(words) >= 3 and 2 * capitalised <= len(words) - 1


def _tail(pieces: list[str]) -> str:
    """What merging needs to see of a block: all of a one-piece block, else its last piece (behind
    a mark, so that a glyph-only last piece does not read as a glyph-only block)."""
    return pieces[0] if len(pieces) == 1 else f"\u2026 {pieces[-1].lstrip()}"


def _blocks(body: Sequence[str]) -> tuple[list[str], int]:
    """Body lines glued back into blocks where a page or layout break cut one; artifacts counted."""
    artifacts = 0
    blocks: list[list[str]] = []  # each block's pieces, joined once at the end (linear time)
    for raw in body:
        line = _GLUED_GLYPH.sub(r"\1 ", " ".join(raw.split()))
        if not line:
            continue
        if is_page_furniture(line) or is_toc_line(line) or _is_running_header(line):
            artifacts += 1
            continue
        if blocks and _should_merge(_tail(blocks[-1]), line):
            previous = blocks[-1][-1]
            glued = (previous.endswith("-") and line[:1].islower()) or line[:1] in ",;:.)"
            blocks[-1].append(line if glued else f" {line}")
        else:
            blocks.append([line])
    return ["".join(pieces) for pieces in blocks], artifacts


def _segment(
    heading: str, body: Sequence[str], terminated: bool, options: SegmentOptions, *, page_headings: int = 0
) -> Item1CSection:
    blocks, artifacts = _blocks(body)
    kept: list[list[str]] = []  # each paragraph's blocks: a sentence, or a lead-in and its short items
    leads: list[bool] = []  # whether the paragraph opens with a lead-in sentence
    follows: list[bool] = []  # whether a list item or a paragraph of prose comes right after it
    headings = fragments = 0
    for index, block in enumerate(blocks):
        words = len(block.split())
        if _starts_bullet(block) and kept and words < options.min_words:
            # A short list item ("\u2022 product security;") belongs with the sentence that introduces it.
            kept[-1].append(block)
        elif words >= options.min_words or block.endswith(":"):
            kept.append([block])  # a short "... the following:" is kept for the list items that follow
            leads.append(is_lead_in(block))
            following = blocks[index + 1] if index + 1 < len(blocks) else ""
            follows.append(_starts_bullet(following) or len(following.split()) >= options.min_words)
        elif block.endswith((".", "!", "?", ";")):
            fragments += 1
        else:
            headings += 1
    paragraphs = []
    for parts, lead, followed in zip(kept, leads, follows, strict=True):
        text = " ".join(parts)
        # A lead-in is kept with its list: joined by its short items, or before long ones on its own.
        if len(text.split()) >= options.min_words or (lead and (len(parts) > 1 or followed)):
            paragraphs.append(text)
        else:
            fragments += 1
    return Item1CSection(
        heading, tuple(paragraphs), headings, fragments, artifacts + page_headings, terminated
    )


def _is_running_header(line: str) -> bool:
    # "Acme Corp. | 2023 Form 10-K | 27" survives the cleaner when it occurs only once or twice.
    return len(line.split()) <= 10 and bool(_RUNNING_HEADER.search(line)) and not line.endswith(".")


def paragraph_documents(
    section: Item1CSection, metadata: Mapping[str, Any], *, id_prefix: str
) -> list[Document]:
    """One Document per paragraph; ids are ``<accession or file stem>-<index>``, stable across runs."""
    return [
        Document(
            id=f"{id_prefix}-{index:03d}",
            text=text,
            metadata={**metadata, "paragraph_index": index, "section": "Item 1C"},
        )
        for index, text in enumerate(section.paragraphs)
    ]
