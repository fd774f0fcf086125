"""Find the body "Item 1C. Cybersecurity" section of a cleaned 10-K and cut it into paragraphs.

A filing names Item 1C up to three times: in the table of contents, in the body, and sometimes in
a cross-reference index at the end. Every line that *starts* with an Item 1C heading is a
candidate; each candidate's section runs to the next item heading, and the candidate with the
most prose wins. A TOC line is followed at once by the next TOC entry, so it has none. When no
candidate has prose the filing is reported as having no Item 1C; nothing is guessed. A heading
laid out in two cells or blocks ("ITEM 1C" above "CYBERSECURITY") is one heading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import structlog

from sec_cybert.components import Document
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


def find_item_1c(
    lines: Sequence[str], options: SegmentOptions = DEFAULT_SEGMENT_OPTIONS
) -> Item1CSection | NoItem1C:
    """Locate the body Item 1C section in cleaned lines (one block per line)."""
    candidates = [i for i, line in enumerate(lines) if _starts_item_1c(line)]
    if not candidates:
        return NoItem1C("no Item 1C heading")
    best: tuple[int, str, list[str], bool] | None = None
    for start in candidates:
        heading, body, next_line = _split_heading(lines, start)
        size, terminated = sum(map(len, body)), False
        for line in lines[next_line:]:
            if _ends_section(line):
                terminated = True
                break
            body.append(line)
            size += len(line)
            if size > options.max_section_chars:
                break
        score = _prose_chars(body)
        if best is None or score > best[0]:
            best = (score, heading, body, terminated)
    assert best is not None
    score, heading, body, terminated = best
    if score < options.min_section_chars:
        return NoItem1C("Item 1C heading only in the table of contents or an index (no section body)")
    return _segment(heading, body, terminated, options)


def _split_heading(lines: Sequence[str], start: int) -> tuple[str, list[str], int]:
    """The heading at ``start``, the text after it on its line, and the index of the next line.

    A bare "Item 1C." line takes a "Cybersecurity" line after it into the heading: the two were
    separate cells or blocks. Only the title is taken, so a TOC entry stays without a body.
    """
    line = lines[start]
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


def _segment(heading: str, body: Sequence[str], terminated: bool, options: SegmentOptions) -> Item1CSection:
    artifacts = 0
    blocks: list[str] = []
    for raw in body:
        line = " ".join(raw.split())
        if not line:
            continue
        if is_page_furniture(line) or is_toc_line(line) or _is_running_header(line):
            artifacts += 1
            continue
        if blocks and _should_merge(blocks[-1], line):
            glued = (blocks[-1].endswith("-") and line[:1].islower()) or line[:1] in ",;:.)"
            joiner = "" if glued else " "
            blocks[-1] = f"{blocks[-1]}{joiner}{line}"
        else:
            blocks.append(line)
    kept: list[str] = []
    headings = fragments = 0
    for block in blocks:
        if _starts_bullet(block) and kept and len(block.split()) < options.min_words:
            # A short list item ("• product security;") belongs with the sentence that introduces it.
            kept[-1] = f"{kept[-1]} {block}"
        elif len(block.split()) >= options.min_words or block.endswith(":"):
            kept.append(block)  # a short "... the following:" is kept for the list items that follow
        elif block.endswith((".", "!", "?", ";")):
            fragments += 1
        else:
            headings += 1
    paragraphs = [p for p in kept if len(p.split()) >= options.min_words]
    fragments += len(kept) - len(paragraphs)
    return Item1CSection(heading, tuple(paragraphs), headings, fragments, artifacts, terminated)


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
