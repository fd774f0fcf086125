"""Properties of the 10-K HTML cleaner: it never fails, its lines are normalized, prose survives."""

from __future__ import annotations

import html

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prop_support import (
    deeply_nested,
    examples,
    html_documents,
    prose_paragraphs,
    render_prose,
    sentences,
)

pytest.importorskip("selectolax")

from sec_cybert.corpus.html_clean import CleanedFiling, clean_html  # noqa: E402
from sec_cybert.corpus.html_depth import nesting_depth  # noqa: E402


def check_lines(cleaned: CleanedFiling) -> None:
    """One block per line: no empty line, no whitespace at either end or other than single spaces."""
    assert isinstance(cleaned, CleanedFiling)
    assert isinstance(cleaned.text, str)
    for line in cleaned.lines:
        assert line, f"empty line in {cleaned.text!r}"
        assert line == line.strip(), f"unstripped line {line!r}"
        assert " ".join(line.split()) == line, f"whitespace not folded in {line!r}"
    # Whoever reads the text with str.splitlines() sees the same lines as CleanedFiling.lines.
    assert cleaned.text.splitlines() == cleaned.lines
    assert cleaned.item_headings <= len(cleaned.lines)
    assert min(cleaned.table_rows_kept, cleaned.table_rows_dropped, cleaned.exhibit_rows_dropped) >= 0
    for line in cleaned.tagged_item1c:  # the filing's own Item 1C tags, read like its text
        assert line and " ".join(line.split()) == line, f"tagged line not folded: {line!r}"


@settings(max_examples=examples(150))
@given(st.binary(max_size=400))
def test_any_bytes_clean(raw):
    cleaned = clean_html(raw)
    check_lines(cleaned)
    assert cleaned.encoding in ("utf-8", "cp1252")


@settings(max_examples=examples(100))
@given(st.text(max_size=400))
def test_any_text_cleans(raw):
    cleaned = clean_html(raw)
    check_lines(cleaned)
    assert cleaned.encoding == "str"


@settings(max_examples=examples(250))
@given(html_documents(), st.sampled_from(["str", "utf-8", "cp1252"]))
# Found by the thorough profile: the parser cannot delete the root, which a stray tag can hide.
@example('<html style="display:none"></html>', "str")
@example('<p>a</p><html style="font-family:Wingdings">', "utf-8")
def test_malformed_html_cleans(document, form):
    raw = document if form == "str" else document.encode(form, errors="replace")
    check_lines(clean_html(raw))


@settings(max_examples=examples(40))
@given(deeply_nested())
def test_deep_nesting_cleans(document):
    check_lines(clean_html(document))


_BLOCKS = ["div", "section", "blockquote", "center", "article", "ix:nonNumeric"]


@settings(max_examples=examples(100))
@given(
    st.lists(st.sampled_from(_BLOCKS), min_size=1, max_size=300),
    st.sampled_from(["font", "b", "i", "a"]),
    st.booleans(),
)
def test_nesting_depth_counts_blocks_and_not_formatting(names, inline, closed):
    """The depth that slows the parser: each nested block counts, a formatting tag never does
    (the parser re-opens an unclosed one instead of nesting it), and blocks side by side are one deep."""
    opening = "".join(f"<{name}><{inline}>" for name in names)
    closing = "".join(f"</{inline}></{name}>" for name in reversed(names)) if closed else ""
    assert nesting_depth(f"{opening}x{closing}") == len(names)
    assert nesting_depth("".join(f"<{name}><{inline}>x</{name}>" for name in names)) == 1


@st.composite
def prose_document(draw, *, wrap_lines: bool):
    """Paragraphs of prose in plain <p>s (some inside ix:nonNumeric), with noise between them."""
    paragraphs = draw(prose_paragraphs)
    noise = st.sampled_from(
        [
            "",
            '<div style="display:none"><ix:nonNumeric name="dei:EntityCentralIndexKey">0000123456</ix:nonNumeric></div>',
            "<ix:header><ix:hidden>hidden fact</ix:hidden></ix:header>",
            "<table><tr><td>Net income</td><td>1,234</td><td>5,678</td></tr></table>",
            "<p>12</p>",
            "<hr/>",
            '<p style="text-align:center">F-3</p>',
            "<script>var x = 'no';</script>",
            "<br>",
            "\n",
            # A stray second <html> or <body> tag lends the real one its attributes.
            '<html style="display:none">',
            '<body style="display: none">',
        ]
    )
    parts = [draw(st.sampled_from(["", "<html><body>"]))]
    for paragraph in paragraphs:
        parts.append(draw(noise))
        inner = draw(render_prose(paragraph, wrap_lines=wrap_lines))
        if draw(st.booleans()):
            inner = f'<ix:nonNumeric name="us-gaap:Policy" contextref="c-1">{inner}</ix:nonNumeric>'
        attrs = draw(st.sampled_from(["", ' style="margin-top:6pt"', ' class="p1"']))
        parts.append(f"<p{attrs}>{inner}</p>")
    parts.append(draw(noise))
    parts.append("</body></html>")
    return paragraphs, "".join(parts)


def check_prose_kept(paragraphs: list[str], document: str) -> None:
    lines = clean_html(document).lines
    for paragraph in paragraphs:
        assert paragraph in lines, f"lost or altered: {paragraph!r}\nlines: {lines!r}"
    positions = [lines.index(p) for p in paragraphs]
    assert positions == sorted(positions), "paragraphs out of order"


@settings(max_examples=examples(150))
@given(prose_document(wrap_lines=False))
def test_prose_in_plain_paragraphs_is_kept_whole(case):
    paragraphs, document = case
    check_prose_kept(paragraphs, document)


@settings(max_examples=examples(100))
@given(prose_document(wrap_lines=True))
def test_source_line_breaks_inside_a_paragraph_do_not_split_it(case):
    """A newline in the HTML source is a space when rendered: the paragraph stays one line."""
    paragraphs, document = case
    check_prose_kept(paragraphs, document)


@settings(max_examples=examples(60))
@given(st.lists(sentences(), min_size=1, max_size=4, unique=True))
def test_pre_keeps_its_line_breaks(lines):
    body = "\n".join(html.escape(line, quote=False) for line in lines)
    cleaned = clean_html(f"<html><body><p>Before the listing.</p><pre>{body}</pre></body></html>")
    assert cleaned.lines[0] == "Before the listing."
    cleaned = clean_html(f"<html><body><pre>{body}</pre></body></html>")
    assert cleaned.lines == lines
