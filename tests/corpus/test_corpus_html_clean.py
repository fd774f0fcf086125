from __future__ import annotations

from pathlib import Path

from sec_cybert.corpus.html_clean import clean_html, decode_html, is_page_furniture, is_toc_line


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
