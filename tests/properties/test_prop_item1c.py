"""Properties of the Item 1C extractor and paragraph segmenter: it never fails, every paragraph is
made of the section's own lines in order, and the prose of a well-formed section all comes out."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from prop_support import examples, html_documents, render_prose, sentences

from sec_cybert.corpus.item1c import (
    ITEM_1C,
    Item1CSection,
    NoItem1C,
    SegmentOptions,
    find_item_1c,
    paragraph_documents,
)

_TERMINAL = (".", "!", "?", ":", ";", "\u201d", '"', ")", "\u2019")

line_bits = st.one_of(
    sentences(min_words=1, max_words=25),
    sentences(min_words=8, max_words=25),
    st.sampled_from(
        [
            "Item 1C. Cybersecurity",
            "ITEM 1C.",
            "Cybersecurity",
            "ITEM 1CCYBERSECURITY",
            "Item 1C. Cybersecurity 25",
            "Item 1C (Cybersecurity) We assess risks from threats to our systems.",
            "Item 1B. Unresolved Staff Comments",
            "Item 2. Properties",
            "PART II",
            "Part II.",
            "12",
            "F-3",
            "Acme Corp. | 2024 Form 10-K | 27",
            "Risk Management and Strategy",
            "Governance",
            "\u2022",
            "-",
            "\u2022 product security;",
            "o vendor reviews;",
            "the following:",
            "and the Board of",
            "directors.",
            "cyber-",
            "security program.",
            ", including vendors.",
            "",
            " ",
            "\t",
            "None.",
            "PART I",
            "Part I | Item 1C. Cybersecurity",
            "ITEM 1C. CYBERSECURITY (continued)",
            "Our program includes:",
            "\u2022annual penetration tests;",
        ]
    ),
    st.text(max_size=40),
)
options = st.builds(
    SegmentOptions,
    min_words=st.integers(1, 20),
    max_section_chars=st.integers(1000, 5000),
    min_section_chars=st.integers(1, 400),
)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _units(line: str) -> set[str]:
    """What of one line a paragraph can hold: the line, or what follows an Item 1C heading on it."""
    units = {_squeeze(line)}
    if ITEM_1C.match(line):
        units.add(_squeeze(ITEM_1C.sub("", line, count=1)))
    return units - {""}


def _made_of_lines_in_order(paragraphs: tuple[str, ...], lines: list[str]) -> bool:
    """Each paragraph, whitespace aside, is whole lines of ``lines`` joined in order, each line used
    once and the paragraphs in order too (merging across a page break skips the lines between)."""
    units = [_units(line) for line in lines]
    start = 0  # the first line the next paragraph may use
    for paragraph in paragraphs:
        target = _squeeze(paragraph)
        # earliest[o]: the smallest index of the next usable line once target[:o] is matched.
        earliest = {0: start}
        for offset in range(len(target)):
            if offset not in earliest:
                continue
            for i in range(earliest[offset], len(lines)):
                for unit in units[i]:
                    if target.startswith(unit, offset):
                        end = offset + len(unit)
                        earliest[end] = min(earliest.get(end, len(lines) + 1), i + 1)
        if len(target) not in earliest:
            return False
        start = earliest[len(target)]
    return True


def check_section(result, lines: list[str], opts: SegmentOptions) -> None:
    assert isinstance(result, (Item1CSection, NoItem1C))
    if isinstance(result, NoItem1C):
        assert result.reason
        return
    assert ITEM_1C.match(result.heading)
    for paragraph in result.paragraphs:
        # A lead-in sentence ("The program includes:") is kept with its list however short it is.
        assert len(paragraph.split()) >= opts.min_words or ":" in paragraph, paragraph
        assert " ".join(paragraph.split()) == paragraph, f"whitespace not folded: {paragraph!r}"
    assert _made_of_lines_in_order(result.paragraphs, lines), (result.paragraphs, lines)
    assert min(result.headings_dropped, result.fragments_dropped, result.artifacts_dropped) >= 0
    documents = paragraph_documents(result, {"accession": "x"}, id_prefix="x")
    assert [d.text for d in documents] == list(result.paragraphs)
    assert len({d.id for d in documents}) == len(documents)


@settings(max_examples=examples(300))
@given(st.lists(line_bits, max_size=40), options)
def test_any_lines_segment(lines, opts):
    check_section(find_item_1c(lines, opts), lines, opts)


@settings(max_examples=examples(60))
@given(html_documents(), options)
def test_cleaned_malformed_html_segments(document, opts):
    from sec_cybert.corpus.html_clean import clean_html

    lines = clean_html(document).lines
    check_section(find_item_1c(lines, opts), lines, opts)


def _split_point(paragraph: str, data) -> tuple[str, str] | None:
    """A place to cut the sentence where the segmenter must join it again (a page break)."""
    words = paragraph.split(" ")
    cuts = [
        k
        for k in range(3, len(words) - 1)
        if words[k][:1].islower()
        and words[k][:1].isascii()
        and words[k] != "o"  # "o text" is a list item, as Word's "o" bullet makes it
        and not words[k - 1].endswith(_TERMINAL)
    ]
    if not cuts:
        return None
    k = data.draw(st.sampled_from(cuts))
    return " ".join(words[:k]), " ".join(words[k:])


# A section is found by its lines of 8+ words; this one has one even when every other is cut.
_INTRO = "We describe our processes for assessing, identifying and managing material risks from cybersecurity threats."


@settings(max_examples=examples(100))
@given(
    st.lists(sentences(min_words=8), min_size=1, max_size=6, unique=True),
    st.sampled_from(["Item 1C. Cybersecurity", "ITEM 1C. CYBERSECURITY", "Item 1C \u2013 Cybersecurity"]),
    st.booleans(),
    st.data(),
)
def test_a_well_formed_section_comes_out_whole(paragraphs, heading, wrap_lines, data):
    """A 10-K whose Item 1C holds sentences in <p>s: every sentence is one paragraph, verbatim,
    including one that a page break (number, rule, running footer) cut in two."""
    pytest.importorskip("selectolax")
    from sec_cybert.corpus.html_clean import clean_html

    body = []
    first_halves = []
    for paragraph in paragraphs:
        cut = _split_point(paragraph, data) if data.draw(st.booleans()) else None
        if cut is None:
            body.append(f"<p>{data.draw(render_prose(paragraph, wrap_lines=wrap_lines))}</p>")
            continue
        first_halves.append(cut[0])
        page_break = data.draw(
            st.sampled_from(
                [
                    "<p>27</p><hr/>",
                    '<p style="text-align:center">F-3</p>',
                    "<p>Acme Corp. | 2024 Form 10-K | 27</p><hr/>",
                    "",
                ]
            )
        )
        first = data.draw(render_prose(cut[0], wrap_lines=wrap_lines))
        rest = data.draw(render_prose(cut[1], wrap_lines=wrap_lines))
        body.append(f"<p>{first}</p>{page_break}<p>{rest}</p>")
    # A short line that recurs 3+ times is a running header by design; halves must not recur.
    assume(len(set(first_halves)) == len(first_halves))
    document = (
        "<html><body><p>PART I</p>"
        "<table><tr><td>Item 1C.</td><td>Cybersecurity</td><td>25</td></tr>"
        "<tr><td>Item 2.</td><td>Properties</td><td>26</td></tr></table>"
        f"<p>Item 1B. Unresolved Staff Comments</p><p>None.</p><p>{heading}</p><p>{_INTRO}</p>{''.join(body)}"
        "<p>Item 2. Properties</p><p>We lease our headquarters in Ohio and own two plants.</p></body></html>"
    )
    opts = SegmentOptions(min_section_chars=1)
    section = find_item_1c(clean_html(document).lines, opts)
    assert isinstance(section, Item1CSection), section
    assert section.paragraphs == (_INTRO, *paragraphs)
    assert section.terminated


# What annual-report-style filings print at the top of each page of Item 1C.
_PAGE_HEADERS = [
    ["PART I", "ITEM 1C. CYBERSECURITY"],
    ["PART I", "Item 1C.", "Cybersecurity"],
    ["Part I | Item 1C. Cybersecurity"],
    ["ITEM 1C. CYBERSECURITY (continued)"],
    ["PART I"],
    ["27", "PART I", "ITEM 1C"],
]


@settings(max_examples=examples(100))
@given(st.lists(sentences(min_words=8), min_size=1, max_size=6, unique=True), st.data())
def test_page_headers_inside_the_section_change_nothing(paragraphs, data):
    """Running page headers anywhere between the section's lines, a sentence cut by one included,
    leave its paragraphs as they are without them; each header line is counted as an artifact."""
    lines = ["Item 1C. Cybersecurity", _INTRO]
    with_headers = list(lines)
    header_lines = 0
    for paragraph in paragraphs:
        cut = _split_point(paragraph, data) if data.draw(st.booleans()) else None
        pieces = list(cut) if cut else [paragraph]
        lines += pieces
        for piece in pieces:
            if data.draw(st.booleans()):
                header = data.draw(st.sampled_from(_PAGE_HEADERS))
                with_headers += header
                header_lines += len(header)
            with_headers.append(piece)
    opts = SegmentOptions(min_section_chars=1)
    plain = find_item_1c([*lines, "Item 2. Properties"], opts)
    section = find_item_1c([*with_headers, "Item 2. Properties"], opts)
    assert isinstance(plain, Item1CSection) and isinstance(section, Item1CSection)
    assert section.paragraphs == plain.paragraphs == (_INTRO, *paragraphs)
    assert section.artifacts_dropped == plain.artifacts_dropped + header_lines
