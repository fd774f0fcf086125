# ruff: noqa: E501  (fixture lines are long on purpose: they mirror real filing text)
"""The filing's own Item 1C tags (inline-XBRL ``cyd`` text blocks) and the check against them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sec_cybert.corpus.build import build_item1c
from sec_cybert.corpus.cli import corpus
from sec_cybert.corpus.html_clean import clean_html
from sec_cybert.corpus.item1c import Item1CSection, NoItem1C, find_item_1c
from sec_cybert.corpus.stats import corpus_stats, load_tokenizer
from sec_cybert.corpus.tag_check import check_against_tags

FIXTURES = Path(__file__).parent / "fixtures"

OUTSIDE_ITEM_1C = (
    "Risks from cybersecurity threats, including prior incidents at our substations, have not materially "
    "affected our business strategy, results of operations or financial condition."
)
TAGGED = (
    "Risk Management and Strategy",
    "Our cybersecurity program is part of the enterprise risk management process that our Risk Committee runs "
    "for every operating risk of the company. It is designed to protect the control systems of our transmission "
    "network and the customer data in our billing systems.",
    "The program is built on three parts:",
    "\u2022 continuous monitoring of our operational technology networks by a security operations center that is "
    "staffed at all hours of the day;",
    "\u2022 penetration tests of our substation controls by an outside firm each year, with the findings tracked "
    "until they are remediated; and",
    # The continuation after the page break: its page number (in ix:exclude) is not part of the fact,
    # and the text block nested in it is read once.
    "\u2022 a vendor review that scores every supplier with access to our grid systems before the contract is "
    "signed and again each year.",
    "We require suppliers that operate equipment in our substations to report any security incident to us "
    "within twenty-four hours of discovering it.",
    "For the risks that cybersecurity threats pose to our grid, see the risk factors in Item 1A of this report.",
    OUTSIDE_ITEM_1C,  # the same fact, continued in Item 1A
    "The Audit Committee of our Board of Directors oversees cybersecurity risk and hears a report from our "
    "Chief Information Security Officer at every regular meeting.",
    # A continuation nested in another fact's continuation: read once, with its own fact.
    "The full Board reviews the program once a year with the Chief Information Security Officer and the outside "
    "firm that tests our substation controls.",
    "Our Chief Information Security Officer has led security programs at two regional utilities over a career "
    "of eighteen years in the field.",
)


@pytest.fixture
def tagged_html(filing_html) -> str:
    return filing_html("item1c_cyd_tagged.htm")


def test_cyd_text_blocks_are_read_with_their_continuations_once_each(tagged_html):
    cleaned = clean_html(tagged_html)
    assert cleaned.tagged_item1c == TAGGED and not cleaned.tagged_item1c_truncated
    # The tags change nothing in the text itself, and a filing without cyd tags has no tagged text.
    assert "32" not in cleaned.lines and cleaned.lines.count(OUTSIDE_ITEM_1C) == 1
    assert clean_html((FIXTURES / "legacy_10k.htm").read_bytes()).tagged_item1c == ()


def test_the_check_reports_tagged_text_the_section_missed(tagged_html):
    cleaned = clean_html(tagged_html)
    section = find_item_1c(cleaned.lines)
    assert isinstance(section, Item1CSection)
    check = check_against_tags(section, cleaned.tagged_item1c, min_words=8)
    assert check is not None
    assert check.missed == (OUTSIDE_ITEM_1C,) and check.missed_lines == 1 and check.missed_words == 23
    # Headings and short items are not checked; every tagged sentence and the lead-in are.
    assert check.tagged_words == sum(len(re.findall(r"[^\W_]+", line)) for line in TAGGED[1:])
    assert check.metadata() == {"cyd_tagged_words": check.tagged_words, "cyd_missed_words": 23}


def test_a_section_that_lost_its_first_page_is_caught_by_the_check(tagged_html):
    """What the check is for: the section below lost its opening paragraph and lead-in."""
    cleaned = clean_html(tagged_html)
    section = find_item_1c(cleaned.lines)
    assert isinstance(section, Item1CSection)
    cut = Item1CSection(section.heading, section.paragraphs[2:], 0, 0, 0, True)
    check = check_against_tags(cut, cleaned.tagged_item1c, min_words=8)
    assert check is not None and check.missed_lines == 3
    assert check.missed[:2] == (TAGGED[1][:199] + "\u2026", "The program is built on three parts:")
    nothing = check_against_tags(NoItem1C("no Item 1C heading"), cleaned.tagged_item1c, min_words=8)
    assert nothing is not None and nothing.missed_words == nothing.tagged_words > 0
    assert check_against_tags(section, (), min_words=8) is None


def test_continuation_links_in_a_cycle_or_to_nowhere_end():
    html = (
        "<html><body><p>Item 1C. Cybersecurity</p>"
        '<ix:nonNumeric name="cyd:CybersecurityRiskBoardOfDirectorsOversightTextBlock" id="a" continuedAt="b">'
        "<p>Our Board oversees the cybersecurity program through the Audit Committee of the Board.</p></ix:nonNumeric>"
        '<ix:continuation id="b" continuedAt="c"><p>The committee hears from our security officer each quarter.</p></ix:continuation>'
        '<ix:continuation id="c" continuedAt="b"><p>It reviews the incident response plan each year.</p></ix:continuation>'
        '<ix:nonNumeric name="cyd:CybersecurityRiskRoleOfManagementTextBlock" id="d" continuedAt="missing">'
        "<p>Management runs the program day to day under the security officer.</p></ix:nonNumeric>"
        "</body></html>"
    )
    assert clean_html(html).tagged_item1c == (
        "Our Board oversees the cybersecurity program through the Audit Committee of the Board.",
        "The committee hears from our security officer each quarter.",
        "It reviews the incident response plan each year.",
        "Management runs the program day to day under the security officer.",
    )


def test_item1c_report_paragraphs_and_stats_show_what_the_tags_found(tmp_path, tiny_tokenizer_dir):
    html_dir = tmp_path / "html"
    html_dir.mkdir()
    shutil.copy(FIXTURES / "item1c_cyd_tagged.htm", html_dir / "0000654321-25-000004.htm")
    shutil.copy(FIXTURES / "acme_10k_ixbrl.htm", html_dir / "123456_10K_2024_0000123456-25-000007.htm")
    out = tmp_path / "item1c.jsonl"
    result = CliRunner().invoke(
        corpus, ["item1c", "--html", str(html_dir), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    # The Acme filing tags its Item 1C too, and its section holds all of it.
    assert "cyd-tagged Item 1C text missed in 1 of 2 tagged filings (23 of " in result.output

    report = json.loads((tmp_path / "item1c.report.json").read_text())["tag_check"]
    assert report["filings_tagged"] == 2 and report["filings_missing_tagged_text"] == 1
    assert report["missed_words"] == 23
    assert report["files"]["0000654321-25-000004.htm"]["missed"] == [OUTSIDE_ITEM_1C]

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    missed = {r["metadata"]["source_file"]: r["metadata"]["cyd_missed_words"] for r in rows}
    assert missed == {"0000654321-25-000004.htm": 23, "123456_10K_2024_0000123456-25-000007.htm": 0}

    stats = corpus_stats(out, load_tokenizer(str(tiny_tokenizer_dir)), seq_len=64)
    assert stats.item1c_tag_check == {
        "filings_tagged": 2,
        "filings_missing_tagged_text": 1,
        "tagged_words": report["tagged_words"],
        "missed_words": 23,
    }
    assert "cyd-tagged Item 1C text missed" in stats.table()
    assert "23 of" in stats.table() and "(1 of 2 tagged filings)" in stats.table()


def test_sections_that_hold_all_their_tagged_text_are_not_listed(html_dir, tmp_path):
    """The Acme filing and its truncated copy tag Item 1C; the other inputs tag nothing."""
    summary = build_item1c(html_dir, tmp_path / "item1c.jsonl", workers=1)
    assert summary.tag_check["filings_tagged"] == 2 and summary.tag_check["tagged_words"] > 0
    assert summary.tag_check["missed_words"] == 0 and summary.tag_check["files"] == {}


def test_tagged_text_past_the_reading_limit_is_cut_and_the_filing_listed(tagged_html, monkeypatch):
    import sec_cybert.corpus.xbrl_tags as xbrl_tags
    from sec_cybert.corpus.tag_check import TagCheckTally

    monkeypatch.setattr(xbrl_tags, "MAX_TAGGED_CHARS", 400)
    cleaned = clean_html(tagged_html)
    assert cleaned.tagged_item1c_truncated and len(cleaned.tagged_item1c) < len(TAGGED)
    section = find_item_1c(cleaned.lines)
    check = check_against_tags(section, cleaned.tagged_item1c, min_words=8, truncated=True)
    assert check is not None and check.truncated and check.missed_words == 0
    tally = TagCheckTally()
    tally.add("big.htm", check.as_dict())
    assert tally.files == {"big.htm": check.as_dict()} and tally.filings_missing_tagged_text == 0
