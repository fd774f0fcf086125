# ruff: noqa: E501  (fixture lines are long on purpose: they mirror real filing text)
from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path

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
        "ITEM 1CCYBERSECURITY",  # two spans side by side, no space between them
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


@pytest.mark.parametrize(
    "split", [("Item 1C.", "Cybersecurity"), ("ITEM 1C", "CYBERSECURITY"), ("Item 1C", "(Cybersecurity)")]
)
def test_heading_in_two_blocks_is_one_heading_and_toc_stays_without_body(split):
    toc = [*split, "Item 2.", "Properties"]  # the index laid out the same way
    lines = [*toc, "Item 1B. Unresolved Staff Comments", "None.", *split, *BODY, "Item 2. Properties"]
    section = find_item_1c(lines)
    assert isinstance(section, Item1CSection) and section.heading == " ".join(split)
    assert section.paragraphs == tuple(BODY[1:]) and section.headings_dropped == 1
    toc_only = find_item_1c([*toc, "We own all of our plants in Ohio and Indiana and lease our offices."])
    assert isinstance(toc_only, NoItem1C) and "table of contents" in toc_only.reason


HEADING_LAYOUT_PARAGRAPHS = {
    "item1c_heading_cells.htm": (
        "Our information security program is designed to protect the policyholder, claims and payment "
        "systems that our insurance subsidiaries rely on from cybersecurity threats.",
        "We assess cybersecurity risks each year as part of our enterprise risk assessment, and our "
        "internal auditors test the controls that address the most significant of them.",
        "The Risk Committee of our Board of Directors oversees the program and receives a report from our "
        "Chief Information Security Officer at every regular meeting.",
    ),
    "item1c_heading_lines.htm": (
        "We maintain a cybersecurity program that is designed to protect the robot controllers we ship and "
        "the engineering systems we use to design them from cybersecurity threats.",
        "Our product security team reviews the firmware of every controller release, and an outside firm "
        "tests our corporate network for vulnerabilities twice a year.",
        "Our Audit Committee oversees cybersecurity risk and is briefed by our Chief Information Officer at "
        "least four times each year.",
    ),
}


@pytest.mark.parametrize("fixture", sorted(HEADING_LAYOUT_PARAGRAPHS))
def test_heading_set_in_separate_cells_or_blocks_is_found(filing_html, fixture):
    section = find_item_1c(clean_html(filing_html(fixture)).lines)
    assert isinstance(section, Item1CSection), section
    assert section.heading == "ITEM 1C CYBERSECURITY"
    assert section.paragraphs == HEADING_LAYOUT_PARAGRAPHS[fixture]


def test_prose_and_bullets_in_layout_tables_are_all_in_the_section(filing_html):
    section = find_item_1c(clean_html(filing_html("item1c_layout_tables.htm")).lines)
    assert isinstance(section, Item1CSection)
    assert section.paragraphs == (
        "We operate an information security program designed to identify, assess and manage material risks "
        "from cybersecurity threats to our dispatch, billing and fleet telematics systems.",
        "The program is part of our enterprise risk management process, and cybersecurity risks are reviewed "
        "with operational, financial and safety risks twice a year.",
        "We engage an outside assessor every other year to measure the program against the NIST Cybersecurity Framework.",
        "Key elements of the program include: • network segmentation; • multi-factor authentication;",
        "• quarterly vulnerability scans of our terminal systems; and",
        "• an incident response plan that our dispatch center rehearses with outside counsel every year.",
        "Before a vendor is given access to our systems we review its security controls, and our contracts "
        "require vendors to tell us promptly of any incident that affects our data.",
        "Vendors that process shipment data are reassessed every year.",
        "Our Board of Directors oversees cybersecurity risk through its Audit Committee, which hears a report "
        "from our Chief Information Security Officer each quarter.",
        "Our Chief Information Security Officer has twenty years of experience in information security and "
        "leads a team of analysts who watch our systems around the clock.",
        "We have not identified any cybersecurity incident that has materially affected us, including our "
        "results of operations or financial condition.",
    )
    # The sub-headings of the table layout are headings, as they are in running text.
    assert section.headings_dropped == 4


_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = next(
    (p for p in (_ROOT / "shared" / "data", _ROOT.parent / "shared" / "data") if p.is_dir()), None
)
REAL_FILINGS = [
    ("NFLX-10-K-2024-12-31.htm", "NFLX-10-K-FY2024-item1c.txt"),
    ("UNP-10-K-2024-12-31.htm", "UNP-10-K-FY2024-item1c.txt"),
    ("CRM-10-K-2025-01-31.htm", "CRM-10-K-FY2025-item1c.txt"),
]


@pytest.mark.skipif(SHARED_DATA is None, reason="the shared reference filings are not checked out here")
@pytest.mark.parametrize(("filing", "reference"), REAL_FILINGS)
def test_real_filings_match_their_reference_item1c(filing, reference):
    html, text = SHARED_DATA / "filings" / filing, SHARED_DATA / "item1c" / reference
    if not (html.exists() and text.exists()):
        pytest.skip(f"{filing} or {reference} missing from {SHARED_DATA}")
    cleaned = clean_html(html.read_bytes())
    section = find_item_1c(cleaned.lines)
    assert isinstance(section, Item1CSection) and section.terminated
    ours = " ".join(" ".join(section.paragraphs).split())
    expected = " ".join(text.read_text(encoding="utf-8").split())
    # The reference keeps the sub-headings that paragraphs leave out; the prose is the same.
    assert SequenceMatcher(None, ours, expected, autojunk=False).ratio() >= 0.98
    figures = re.compile(r"^[$%()\-\u2013\u2014,.\d]*\d[$%()\-\u2013\u2014,.\d]*$")
    assert not any(
        sum(1 for token in line.split() if figures.match(token)) * 2 > len(line.split()) >= 4
        for line in cleaned.lines
    ), "a row of figures from a financial table is in the cleaned text"


# --- Annual-report layouts: running page headers, lead-in sentences, bullets in separate spans ---

RUNNING_HEADER_PARAGRAPHS = (
    "We have built an information security program to assess, identify and manage material risks from "
    "cybersecurity threats to the dispatch, billing and fleet telematics systems that run our freight network.",
    "Our cybersecurity risk management program includes:",
    "• risk assessments designed to help identify material cybersecurity risks to our critical systems, "
    "information, services and our broader enterprise IT environment;",
    "• a security team principally responsible for managing our cybersecurity risk assessment processes, our "
    "security controls and our response to cybersecurity incidents;",
    "• the use of external service providers, where appropriate, to assess, test or otherwise assist with "
    "aspects of our security controls;",
    "• cybersecurity awareness training of our employees, incident response personnel and senior management; and",
    "• a third-party risk management process for the service providers, suppliers and vendors that have access "
    "to our systems.",
    # Cut by a page footer and the next page's "PART I" / "ITEM 1C. CYBERSECURITY" header: one sentence again.
    "We test our incident response plan with a tabletop exercise each year, and the results are reviewed by the "
    "Chief Information Security Officer, who sets priorities for the following year based on what the exercise found.",
    "We have not identified risks from known cybersecurity threats, including as a result of any prior "
    "cybersecurity incidents, that have materially affected or are reasonably likely to materially affect us, "
    "including our operations, business strategy, results of operations or financial condition.",
    "Our Board of Directors considers cybersecurity risk as part of its risk oversight function and has "
    "delegated to the Audit Committee oversight of cybersecurity and other information technology risks.",
    "The Audit Committee receives quarterly reports from management on our cybersecurity risks, and the Chief "
    "Information Security Officer briefs the full Board on the program at least once a year.",
    "Our Chief Information Security Officer has served in the role since 2019 and has more than twenty years of "
    "experience in information security, including as the head of security at two logistics companies.",
    # After the third page's header, set as one table row ("PART I" | "ITEM 1C. CYBERSECURITY").
    "The Chief Information Security Officer is informed about and monitors the prevention, detection, "
    "mitigation and remediation of cybersecurity incidents through the incident response process described above.",
    "The members of our security team hold industry certifications, and several of them came to us from the "
    "national transportation security agencies where they investigated attacks on freight carriers.",
)


def test_running_page_headers_do_not_cut_the_section(filing_html):
    """Each page of Item 1C starts with "PART I" and the item's heading: furniture, not a new section.

    Cut at every repeat, the longest piece (the middle page) won and the first page was lost."""
    section = find_item_1c(clean_html(filing_html("item1c_running_headers.htm")).lines)
    assert isinstance(section, Item1CSection) and section.terminated
    assert section.heading == "ITEM 1C. CYBERSECURITY"
    assert section.paragraphs == RUNNING_HEADER_PARAGRAPHS
    assert section.artifacts_dropped == 3  # "PART I", "ITEM 1C. CYBERSECURITY", and the two as one row
    assert section.headings_dropped == 2  # "Risk Management and Strategy", "Governance"


@pytest.mark.parametrize(
    "page_header",
    [
        ["PART I", "ITEM 1C. CYBERSECURITY"],
        ["PART I", "Item 1C.", "Cybersecurity"],
        ["Part I | Item 1C. Cybersecurity"],
        ["ITEM 1C. CYBERSECURITY (continued)"],
        ["PART I"],
        ["Acme Corp. 2024 Annual Report", "31", "PART I", "ITEM 1C"],
    ],
)
def test_a_repeat_of_the_heading_inside_its_section_is_page_furniture(page_header):
    lines = [
        "Item 1C. Cybersecurity",
        BODY[1],
        "Our Audit Committee hears a report on the program from our Chief Information Security Officer and",
        *page_header,
        "reviews the results of our annual penetration test with the outside firm that ran it.",
        "Item 2. Properties",
    ]
    section = find_item_1c(lines)
    assert isinstance(section, Item1CSection) and section.terminated
    assert section.paragraphs == (
        BODY[1],
        "Our Audit Committee hears a report on the program from our Chief Information Security Officer and "
        "reviews the results of our annual penetration test with the outside firm that ran it.",
    )
    assert section.artifacts_dropped == len(page_header)


def test_another_part_still_ends_the_section():
    lines = ["Item 1C. Cybersecurity", *BODY[1:], "PART II", "Item 5. Market for Common Equity", BODY[0]]
    section = find_item_1c(lines)
    assert isinstance(section, Item1CSection) and section.paragraphs == tuple(BODY[1:])


LONG_ITEMS = (
    "• risk assessments designed to help identify material cybersecurity risks to our critical systems;",
    "• a security team principally responsible for managing our cybersecurity risk assessment processes.",
)


def test_a_short_lead_in_before_long_list_items_is_a_paragraph_of_its_own():
    section = find_item_1c(
        [
            "Item 1C. Cybersecurity",
            BODY[1],
            "Our cybersecurity risk management program includes:",
            *LONG_ITEMS,
        ]
    )
    assert isinstance(section, Item1CSection)
    assert section.paragraphs == (BODY[1], "Our cybersecurity risk management program includes:", *LONG_ITEMS)


def test_a_lead_in_is_joined_by_its_short_items_and_a_run_in_heading_is_not_a_lead_in():
    section = find_item_1c(
        [
            "Item 1C. Cybersecurity",
            BODY[1],
            "The program includes:",
            "•annual penetration tests;",  # glyph and text in separate inline-block spans, glued
            "•",
            "phishing tests.",
            "Risk Management and Strategy:",  # a run-in heading: dropped, as headings are
            *LONG_ITEMS,
            "We use:",  # too short to be a lead-in sentence and followed by nothing: a fragment
        ]
    )
    assert isinstance(section, Item1CSection)
    assert section.paragraphs == (
        BODY[1],
        "The program includes: • annual penetration tests; • phishing tests.",
        *LONG_ITEMS,
    )


def test_a_lead_in_laid_out_before_bullet_cells_is_kept(filing_html):
    section = find_item_1c(clean_html(filing_html("item1c_cyd_tagged.htm")).lines)
    assert isinstance(section, Item1CSection)
    index = section.paragraphs.index("The program is built on three parts:")
    assert section.paragraphs[index + 1].startswith("• continuous monitoring of our operational technology")


class _CountingPattern:
    """``ITEM_1C`` that counts the lines it is asked about."""

    def __init__(self, pattern):
        self.pattern, self.calls = pattern, 0

    def match(self, text):
        self.calls += 1
        return self.pattern.match(text)

    def sub(self, *args, **kwargs):
        self.calls += 1
        return self.pattern.sub(*args, **kwargs)


@pytest.mark.parametrize("shape", ["repeated sections", "heading rows"])
def test_repeated_headings_are_read_once_each(monkeypatch, shape):
    """10,000 "Item 1C" headings (a 50,000-row table of them ran past 180 s): each line is looked
    at a bounded number of times, not once per heading before it."""
    import sec_cybert.corpus.item1c as item1c

    counter = _CountingPattern(item1c.ITEM_1C)
    monkeypatch.setattr(item1c, "ITEM_1C", counter)
    unit = (
        ["Item 1C. Cybersecurity", BODY[1]] if shape == "repeated sections" else ["Item 1C.", "Cybersecurity"]
    )
    lines = [*unit * 5000, "Item 2. Properties"]
    section = find_item_1c(lines, SegmentOptions(max_section_chars=10_000_000))
    assert isinstance(section, (Item1CSection, NoItem1C))
    assert counter.calls <= 6 * len(lines)
