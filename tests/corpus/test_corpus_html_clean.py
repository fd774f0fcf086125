from __future__ import annotations

from pathlib import Path

import pytest

from sec_cybert.corpus.html_clean import clean_html, decode_html, is_page_furniture, is_toc_line
from sec_cybert.corpus.item1c import Item1CSection, find_item_1c


def test_hidden_xbrl_and_display_none_are_dropped_but_dei_facts_are_read(acme_html):
    cleaned = clean_html(acme_html)
    assert "0000123456" not in cleaned.text
    assert "HIDDEN-BODY-FACT" not in cleaned.text
    assert "iso4217" not in cleaned.text and "2024-01-01" not in cleaned.text
    assert cleaned.dei["EntityCentralIndexKey"] == "0000123456"
    assert cleaned.dei["DocumentFiscalYearFocus"] == "2024"
    assert cleaned.dei["EntityRegistrantName"] == "ACME WIDGETS, INC."
    # Visible ix facts are unwrapped, not deleted.
    assert "FORM 10-K" in cleaned.lines


def test_page_furniture_toc_urls_and_exhibits_are_removed(acme_html):
    lines = clean_html(acme_html).lines
    text = "\n".join(lines)
    assert "Table of Contents" not in text
    assert not any("Form 10-K |" in line for line in lines), "running footer survived"
    assert "F-3" not in lines and "Page 40 of 40" not in text
    assert "http" not in text and "www." not in text
    assert "Certification of the Chief" not in text and "Inline XBRL" not in text
    assert "Item 1C. Cybersecurity 21" not in text and "Risk Factors 9" not in text
    assert lines.count("Item 1C. Cybersecurity") == 1  # body heading only, spans kept apart


def test_tables_numeric_rows_dropped_prose_rows_kept(acme_html):
    cleaned = clean_html(acme_html)
    assert "1,234" not in cleaned.text and "Net income" not in cleaned.text
    assert any(line.startswith("• Precision widgets, which are sold") for line in cleaned.lines)
    assert cleaned.exhibit_rows_dropped == 5
    assert cleaned.table_rows_kept == 3  # two bullet rows + "PART I Page"


def test_item_headings_kept_and_entities_normalised(acme_html):
    cleaned = clean_html(acme_html)
    for heading in ("Item 1. Business", "Item 1A. Risk Factors", "Item 2. Properties"):
        assert heading in cleaned.lines
    assert "\xa0" not in cleaned.text and "  " not in cleaned.text
    assert "For the fiscal year ended December 31, 2024" in cleaned.lines
    assert "☒" not in cleaned.text and "☐" not in cleaned.text


def test_legacy_wingdings_check_boxes_are_not_text():
    cleaned = clean_html((Path(__file__).parent / "fixtures" / "legacy_10k.htm").read_bytes())
    assert "Indicate by check mark if the registrant is a well-known seasoned issuer. YES NO" in cleaned.lines
    assert (
        "ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934"
        in cleaned.lines
    )
    assert "F-7" not in cleaned.lines
    assert cleaned.dei == {}


def test_non_utf8_bytes_are_decoded_as_cp1252():
    text, encoding = decode_html(b"the \x93widget\x94 \x96 ok")
    assert encoding == "cp1252" and text == "the \u201cwidget\u201d \u2013 ok"
    cleaned = clean_html(b"<p>We make \x93widgets\x94 and sell them to other companies worldwide.</p>")
    assert cleaned.encoding == "cp1252" and "\u201cwidgets\u201d" in cleaned.text


def test_truncated_and_empty_html_do_not_crash(acme_html):
    cut = clean_html(acme_html[:4000])
    assert cut.truncated
    assert clean_html(b"").text == ""
    assert clean_html(b"<html><body><img src=a.png></body></html>").images == 1


def test_line_classifiers():
    for line in (
        "12",
        "- 12 -",
        "F-12",
        "Page 12 of 90",
        "Table of Contents",
        "iv",
        "Acme Corp | 2024 Form 10-K | 27",
    ):
        assert is_page_furniture(line), line
    for line in ("Item 1C. Cybersecurity 25", "Item 7. Management’s Discussion ........ 31", "PART II 17"):
        assert is_toc_line(line), line
    for line in ("Item 1C. Cybersecurity", "We had 12 plants in 2024.", "None."):
        assert not is_page_furniture(line) and not is_toc_line(line), line


def test_prose_tables_keep_their_text_in_reading_order(filing_html):
    lines = clean_html(filing_html("item1c_layout_tables.htm")).lines
    start = lines.index("Item 1C. Cybersecurity")
    assert lines[start + 1 : start + 16] == [
        # one row per line of a wrapped paragraph
        "We operate an information security program",
        "designed to identify, assess and manage material",
        "risks from cybersecurity threats to our dispatch,",
        "billing and fleet telematics systems.",
        # a sub-heading cell beside a cell of two paragraphs
        "Risk Management and Strategy",
        "The program is part of our enterprise risk management process, and cybersecurity risks are "
        "reviewed with operational, financial and safety risks twice a year.",
        "We engage an outside assessor every other year to measure the program against the NIST "
        "Cybersecurity Framework.",
        # short bullet rows: the glyph cell and its text are one line
        "Key elements of the program include:",
        "• network segmentation;",
        "• multi-factor authentication;",
        "• quarterly vulnerability scans of our terminal systems; and",
        "• an incident response plan that our dispatch center rehearses with outside counsel every year.",
        # a heading row above prose rows
        "Third-Party Service Providers",
        "Before a vendor is given access to our systems we review its security controls, and our "
        "contracts require vendors to tell us promptly of any incident that affects our data.",
        "Vendors that process shipment data are reassessed every year.",
    ]
    # Two columns of text: the left column, then the right one.
    assert lines[start + 16 : start + 20] == [
        "Governance",
        "Our Board of Directors oversees cybersecurity risk through its Audit Committee, which hears a "
        "report from our Chief Information Security Officer each quarter.",
        "Management",
        "Our Chief Information Security Officer has twenty years of experience in information security "
        "and leads a team of analysts who watch our systems around the clock.",
    ]


def test_numeric_tables_stay_out_beside_prose_tables(filing_html):
    cleaned = clean_html(filing_html("item1c_layout_tables.htm"))
    for figure_or_label in ("4,512,900", "2,015,400", "Operating income", "(in thousands)", "Fargo", "Doors"):
        assert figure_or_label not in cleaned.text
    assert not any(line.startswith("Item 1C. Cybersecurity 14") for line in cleaned.lines)  # TOC row
    # A footnote of a financial table is a sentence: kept, with its marker.
    assert (
        "(1) Fuel surcharges are billed to shippers each week and are recognized as revenue when the "
        "shipment is delivered." in cleaned.lines
    )
    assert cleaned.table_rows_kept == 15 and cleaned.table_rows_dropped == 12


NESTED_SENTENCES = (
    "We protect the plant control, ordering and payroll systems of our six processing plants with a "
    "security program that our Chief Information Security Officer leads.",
    "Each year we test the program through the following exercises:",
    "• a simulated ransomware attack on one plant;",
    "• phishing tests for office staff; and",
    "• a review of our backup and recovery plans by an outside firm.",
    "The Audit Committee of our Board of Directors reviews the results of these exercises with our "
    "Chief Information Security Officer every quarter.",
)


def _nest(html: str, levels: int) -> str:
    """Wrap the body in ``levels`` page-layout tables."""
    return html.replace("<body>", "<body>" + "<table><tr><td>" * levels).replace(
        "</body>", "</td></tr></table>" * levels + "</body>"
    )


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_nested_table_text_comes_out_once_rows_apart(filing_html, depth):
    cleaned = clean_html(_nest(filing_html("item1c_nested_tables.htm"), depth - 1))
    start = cleaned.lines.index("Item 1C. Cybersecurity")
    assert tuple(cleaned.lines[start + 1 : start + 7]) == NESTED_SENTENCES
    for sentence in NESTED_SENTENCES:
        assert cleaned.text.count(sentence.lstrip("• ")) == 1, sentence
    assert "1,876,450" not in cleaned.text and "Net sales" not in cleaned.text
    assert "Item 1C. Cybersecurity 17" not in cleaned.text
    section = find_item_1c(cleaned.lines)
    assert isinstance(section, Item1CSection)
    assert section.paragraphs == (
        NESTED_SENTENCES[0],
        NESTED_SENTENCES[1],
        f"{NESTED_SENTENCES[2]} {NESTED_SENTENCES[3]}",
        NESTED_SENTENCES[4],
        NESTED_SENTENCES[5],
    )
