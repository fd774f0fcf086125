"""Check an extracted Item 1C section against the text the filing tags as Item 1C (``cyd``).

Where a filing tags its Item 1C (:mod:`sec_cybert.corpus.xbrl_tags`), every tagged sentence should
be in the paragraphs we extract. A tagged line of prose (as many words as a paragraph needs, or a
lead-in sentence) is *missed* when fewer than half of its words are in the paragraphs, counted by
runs of three words so that a word elsewhere in the section does not count. Headings and short
fragments are left out on purpose, so tagged ones are not checked. What is missed is reported,
never repaired: a tagged block outside Item 1C (some filers tag a risk factor in Item 1A) is a
finding to read, not text to paste in.

Words are compared, not characters: the tagged text and the paragraphs split lines differently
(page breaks, bullets, table cells), the words are the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from sec_cybert.corpus.html_clean import CleanedFiling
from sec_cybert.corpus.item1c import Item1CSection, NoItem1C, SegmentOptions, is_lead_in

_TOKEN = re.compile(r"[^\W_]+")
_SHINGLE = 3
_EXAMPLES = 3  # missed lines quoted per filing in the report
_EXAMPLE_CHARS = 200


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _shingles(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + _SHINGLE]) for i in range(len(tokens) - _SHINGLE + 1)}


def _covered(tokens: Sequence[str], have: set[tuple[str, ...]]) -> int:
    """How many of ``tokens`` lie in some three-word run that ``have`` holds."""
    covered = [False] * len(tokens)
    for i in range(len(tokens) - _SHINGLE + 1):
        if tuple(tokens[i : i + _SHINGLE]) in have:
            covered[i : i + _SHINGLE] = [True] * _SHINGLE
    return sum(covered)


@attrs.frozen
class TagCheck:
    """One filing's tagged Item 1C prose against its extracted paragraphs."""

    tagged_words: int
    missed_words: int
    missed_lines: int
    missed: tuple[str, ...]  # the first few missed lines, shortened
    truncated: bool = False  # the tagged text ran past what is read of it

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def metadata(self) -> dict[str, int]:
        """What each paragraph of the filing carries, for ``corpus stats``."""
        return {"cyd_tagged_words": self.tagged_words, "cyd_missed_words": self.missed_words}


def check_against_tags(
    section: Item1CSection | NoItem1C, tagged: Sequence[str], *, min_words: int, truncated: bool = False
) -> TagCheck | None:
    """What of the tagged lines ``tagged`` the section's paragraphs miss; ``None`` without tags."""
    if not tagged:
        return None
    paragraphs = section.paragraphs if isinstance(section, Item1CSection) else ()
    have = _shingles(_tokens(" ".join(paragraphs)))
    tagged_words = missed_words = missed_lines = 0
    examples: list[str] = []
    for line in dict.fromkeys(tagged):  # a line tagged twice is checked once
        tokens = _tokens(line)
        if len(tokens) < _SHINGLE or not (len(line.split()) >= min_words or is_lead_in(line)):
            continue
        tagged_words += len(tokens)
        if 2 * _covered(tokens, have) < len(tokens):
            missed_words += len(tokens)
            missed_lines += 1
            if len(examples) < _EXAMPLES:
                examples.append(
                    line if len(line) <= _EXAMPLE_CHARS else line[: _EXAMPLE_CHARS - 1] + "\u2026"
                )
    return TagCheck(tagged_words, missed_words, missed_lines, tuple(examples), truncated)


def check_filing(
    section: Item1CSection | NoItem1C, cleaned: CleanedFiling, options: SegmentOptions
) -> TagCheck | None:
    """The check for one cleaned filing's section; ``None`` when the filing tags no Item 1C text."""
    return check_against_tags(
        section,
        cleaned.tagged_item1c,
        min_words=options.min_words,
        truncated=cleaned.tagged_item1c_truncated,
    )


@attrs.define
class TagCheckTally:
    """The tag check over a whole ``corpus item1c`` run, for its report."""

    filings_tagged: int = 0
    filings_missing_tagged_text: int = 0
    tagged_words: int = 0
    missed_words: int = 0
    files: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # each filing with missed text

    def add(self, source_file: str, check: Mapping[str, Any] | None) -> None:
        if not check:
            return
        self.filings_tagged += 1
        self.tagged_words += int(check["tagged_words"])
        self.missed_words += int(check["missed_words"])
        if check["missed_lines"] or check.get("truncated"):
            self.filings_missing_tagged_text += int(bool(check["missed_lines"]))
            self.files[source_file] = dict(check)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def summary(self) -> str | None:
        """One line for the command's output, or ``None`` when no filing was tagged."""
        if not self.filings_tagged:
            return None
        return (
            f"cyd-tagged Item 1C text missed in {self.filings_missing_tagged_text} of "
            f"{self.filings_tagged} tagged filings ({self.missed_words:,} of {self.tagged_words:,} words)"
        )
