"""Deeply nested HTML: refused before parsing past a clear limit, and linear below it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sec_cybert.corpus.build import build_item1c, build_shards
from sec_cybert.corpus.html_clean import clean_html
from sec_cybert.corpus.html_depth import MAX_NESTING_DEPTH, HtmlTooDeep, nesting_depth
from sec_cybert.corpus.html_tables import index_tables

SENTENCE = "We keep all of the text here, in a deeply nested element of the filing."


def _chain(open_tag: str, close_tag: str, depth: int, inner: str = f"<p>{SENTENCE}</p>") -> str:
    return f"<html><body>{open_tag * depth}{inner}{close_tag * depth}</body></html>"


@pytest.mark.parametrize(
    ("html", "depth"),
    [
        (_chain("<div>", "</div>", 40), 40),
        (_chain("<ul><li>", "</li></ul>", 30), 30),  # li closes li: the lists nest, the items do not
        (_chain("<div>", "", 25), 25),  # never closed: still nested
        ("<div><div></div><div></div></div>", 2),
        # A table cell is where the parser's search for an open <p> stops: nesting counts from it.
        (_chain("<table><tr><td><div>", "</div></td></tr></table>", 500), 1),
        # Unclosed font and p tags in every paragraph (legacy filings): the parser does not nest them.
        ("<html><body>" + "<p><font size=2>Net sales rose.</p>" * 3000 + "</body></html>", 0),
        # Unclosed cells close each other and </td> closes what was left open in them.
        ("<table>" + "<tr><td><div>a<td><span>b" * 2000 + "</table>", 1),
        ("<table><tr>" + "<td><div><div>x</td>" * 2000 + "</tr></table>", 2),
        # A </div> cannot close a div outside the table cell it is in.
        ("<div><table><tr><td></div>" * 3, 1),
        # Tags in comments and scripts are not elements.
        ("<div><!-- " + "<div>" * 5000 + " --><script>'" + "<div>" * 5000 + "'</script></div>", 1),
    ],
)
def test_nesting_depth_counts_what_the_parser_nests(html, depth):
    assert nesting_depth(html) == depth


def test_nesting_depth_stops_counting_past_the_limit():
    assert nesting_depth(_chain("<div>", "</div>", 100_000), limit=50) == 51


def test_deep_html_is_refused_with_its_reason_before_parsing():
    with pytest.raises(HtmlTooDeep) as caught:
        clean_html(_chain("<div>", "</div>", MAX_NESTING_DEPTH + 1))
    assert str(MAX_NESTING_DEPTH) in caught.value.reason and "skipped" in str(caught.value)
    cleaned = clean_html(_chain("<div>", "</div>", MAX_NESTING_DEPTH - 1))
    assert cleaned.lines == [SENTENCE]


@pytest.mark.parametrize(("open_tag", "close_tag"), [("<div>", "</div>"), ("<ul><li>", "</li></ul>")])
def test_build_and_item1c_skip_a_deeply_nested_filing_and_count_it(tmp_path, open_tag, close_tag):
    """100,000 levels ran past 180 s; now the filing is skipped at once, with its reason counted."""
    html_dir = tmp_path / "html"
    html_dir.mkdir()
    (html_dir / "deep.htm").write_text(_chain(open_tag, close_tag, 100_000))
    body = "".join(f"<p>{SENTENCE} Paragraph {i} of the filing.</p>" for i in range(8))
    (html_dir / "fine.htm").write_text(
        f"<html><body><p>Item 1C. Cybersecurity</p>{body}<p>Item 2. Properties</p></body></html>"
    )
    summary = build_shards(html_dir, tmp_path / "shards", min_chars=100, workers=1)
    assert summary.kept == 1 and summary.skipped == {HtmlTooDeep.reason: 1}
    skipped = [json.loads(line) for line in (tmp_path / "shards" / "skipped.jsonl").read_text().splitlines()]
    assert skipped == [{"file": "deep.htm", "reason": HtmlTooDeep.reason}]
    paragraphs = build_item1c(html_dir, tmp_path / "item1c.jsonl", workers=1)
    assert paragraphs.with_item1c == 1 and paragraphs.without_item1c == {HtmlTooDeep.reason: 1}


def _cpu_time(html: str) -> float:
    times = []
    for _ in range(3):  # CPU time, the least of three: other processes on the machine do not count
        start = time.process_time()
        clean_html(html)
        times.append(time.process_time() - start)
    return min(times)


def test_a_long_chain_of_inline_tags_in_a_table_cell_cleans_in_linear_time():
    """Inline tags (font, b) are not refused: the parser does not slow down on them. Reading a
    cell asked every element of such a chain for a table below it, so time grew with the square of
    the depth: 40,000 nested tags took 50x as long as 40,000 side by side. Linear, it is about 2x."""
    nested = f"<table><tr><td>{SENTENCE}</td></tr></table>"

    def cell(tags: str) -> str:
        return f"<html><body><table><tr><td>{tags}</td></tr></table></body></html>"

    deep = cell("<font>" * 40_000 + nested + "</font>" * 40_000)
    flat = cell("<font></font>" * 40_000 + nested)
    assert clean_html(deep).lines == clean_html(flat).lines == [SENTENCE]
    deep_time, flat_time = _cpu_time(deep), _cpu_time(flat)
    assert deep_time < 15 * max(flat_time, 0.01), (deep_time, flat_time)


class _Node:
    """Just what ``index_tables`` reads of a node, with the parent lookups counted."""

    lookups = 0

    def __init__(self, tag: str, parent: _Node | None) -> None:
        self.tag, self._parent, self.mem_id = tag, parent, id(self)

    @property
    def parent(self) -> _Node | None:
        _Node.lookups += 1
        return self._parent


def test_table_index_visits_each_element_once():
    _Node.lookups = 0
    root = _Node("body", None)
    node = root
    for _ in range(5000):  # a chain of 5,000 elements, then 2,000 tables side by side, each with one inside
        node = _Node("div", node)
    tables = []
    for _ in range(2000):
        outer = _Node("table", node)
        cell = _Node("td", outer)
        tables += [outer, _Node("table", cell)]
    index = index_tables(tables)
    assert index.outermost == tables[::2]
    assert node.mem_id in index.holders and tables[0].mem_id in index.holders
    assert tables[1].mem_id not in index.holders
    assert _Node.lookups <= 5000 + 3 * len(tables)


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[3] / "shared" / "data" / "filings").is_dir(),
    reason="the shared reference filings are not checked out here",
)
def test_real_filings_nest_far_below_the_limit():
    filings = Path(__file__).resolve().parents[3] / "shared" / "data" / "filings"
    for path in sorted(filings.glob("*.htm")):
        assert nesting_depth(path.read_text(encoding="utf-8", errors="replace")) < 50, path.name
