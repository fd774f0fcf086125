# ruff: noqa: E501  (fixture lines are long on purpose: they mirror real filing text)
from __future__ import annotations

import pytest

from sec_cybert.corpus.html_clean import clean_html
from sec_cybert.corpus.item1c import (
    Item1CSection,
    NoItem1C,
    SegmentOptions,
    find_item_1c,
    paragraph_documents,
)

BODY = [
    "Risk Management and Strategy",
    "We maintain a program designed to identify and manage material risks from cybersecurity threats to our systems.",
    "Our Chief Information Security Officer reports to the Audit Committee of our Board of Directors each quarter.",
]


@pytest.mark.parametrize(
    "heading",
    [
        "Item 1C. Cybersecurity",
        "ITEM 1C. CYBERSECURITY",
        "Item 1C – Cybersecurity",
        "ITEM 1C: Cybersecurity",
        "Item1C.Cybersecurity",
        "Item 1 C. Cyber security",
        "ITEM 1C.",
        "Item 1C (Cybersecurity)",
    ],
)
def test_heading_variants(heading):
    section = find_item_1c(
        [
            "Item 1B. Unresolved Staff Comments",
            "None.",
            heading,
            *BODY,
            "Item 2. Properties",
            "We own it all.",
        ]
    )
    assert isinstance(section, Item1CSection)
    assert section.paragraphs == tuple(BODY[1:])
    assert section.headings_dropped == 1 and section.terminated


def test_toc_line_is_not_the_section_and_cross_reference_index_neither():
    lines = [
        "Item 1C. Cybersecurity",  # table of contents, no page number left
        "Item 2. Properties",
        "Item 1B. Unresolved Staff Comments",
        "Item 1C. Cybersecurity",
        *BODY,
        "Item 2. Properties",
        "Form 10-K Cross-Reference Index",
        "Item 1C. Cybersecurity",
        "Item 2. Properties",
    ]
    section = find_item_1c(lines)
    assert isinstance(section, Item1CSection) and len(section.paragraphs) == 2


def test_missing_and_toc_only_are_reported_not_guessed():
    assert find_item_1c(
        ["Item 1. Business", "We make widgets for many customers around the world today."]
    ) == NoItem1C("no Item 1C heading")
    result = find_item_1c(
        ["Item 1C. Cybersecurity", "Item 2. Properties", "We own all of our plants in Ohio and Indiana."]
    )
    assert isinstance(result, NoItem1C) and "table of contents" in result.reason


def test_layout_breaks_are_merged_and_artifacts_dropped():
    lines = [
        "Item 1C. Cybersecurity",
        "Our program is overseen by the Audit Committee of the Board, which receives reports from the",
        "27",
        "Acme Corp. 2024 Form 10-K | 27",
        "Table of Contents",
        "Chief Information Security Officer at least quarterly.",
        "Our CISO leads a team that monitors",
        "third-",
        "party vendors for security incidents and reports them promptly.",
        "•",
        "We test our incident response plan twice a year with tabletop exercises.",
        "Item 2. Properties",
    ]
    section = find_item_1c(lines)
    assert isinstance(section, Item1CSection)
    assert section.paragraphs == (
        "Our program is overseen by the Audit Committee of the Board, which receives reports from the "
        "Chief Information Security Officer at least quarterly.",
        "Our CISO leads a team that monitors third-party vendors for security incidents and reports them promptly.",
        "• We test our incident response plan twice a year with tabletop exercises.",
    )
    assert section.artifacts_dropped == 3


def test_unterminated_section_is_cut_and_flagged():
    section = find_item_1c(["Item 1C. Cybersecurity", *BODY * 200], SegmentOptions(max_section_chars=2000))
    assert isinstance(section, Item1CSection) and not section.terminated
    assert sum(len(p) for p in section.paragraphs) <= 2200


def test_fixture_filing_paragraphs_have_ids_and_metadata(acme_html):
    section = find_item_1c(clean_html(acme_html).lines)
    assert isinstance(section, Item1CSection)
    assert section.paragraphs[0].startswith("We maintain a cybersecurity program")
    assert section.paragraphs[1] == (
        "Our program includes the following elements: • annual penetration tests; "
        "• security awareness training for employees; and"
    )
    # The paragraph interrupted by a page footer and "Table of Contents" link is whole again.
    assert any(
        p.endswith("who reviews them with the executive leadership team each quarter.")
        for p in section.paragraphs
    )
    assert not any("Risk Management and Strategy" in p or p == "Governance" for p in section.paragraphs)
    meta = {"cik": "123456", "company": "ACME WIDGETS, INC.", "accession": "0000123456-25-000007"}
    docs = paragraph_documents(section, meta, id_prefix="0000123456-25-000007")
    assert [d.id for d in docs[:2]] == ["0000123456-25-000007-000", "0000123456-25-000007-001"]
    assert docs[1].metadata["paragraph_index"] == 1 and docs[1].metadata["cik"] == "123456"
