"""Strategies and helpers shared by the property tests (see conftest.py for the profiles)."""

from __future__ import annotations

import html as _html
import os

from hypothesis import settings
from hypothesis import strategies as st

# The ci profile's max_examples; a test asking for n examples gets n * loaded / _BASE of them.
_BASE = 100


def examples(n: int) -> int:
    """``n`` examples under the ci profile, scaled by the loaded profile and ``HYPOTHESIS_SCALE``."""
    scale = settings().max_examples / _BASE * float(os.environ.get("HYPOTHESIS_SCALE", "1"))
    return max(1, round(n * scale))


TRAINING_TEXTS = [
    "The audit committee oversees cybersecurity risk and the CISO reports quarterly.",
    "We maintain a program designed to identify, assess and manage material risks from threats.",
    "Third-party assessors review our incident-response plan annually; vendors' practices too.",
    "Management's Chief Information Security Officer has twenty years of experience.",
]


def tiny_tokenizer():
    from sec_cybert.core.encoders import train_bpe_tokenizer

    return train_bpe_tokenizer(TRAINING_TEXTS * 20, vocab_size=300)


# ---------------------------------------------------------------------------------------------
# Text

SPECIAL_STRINGS = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]
# Whitespace that Python and the tokenizers' regexes disagree about, line separators, controls.
ODD_CHARS = list(
    "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200b\u2028\u2029\u3000\ufeff\x00\x01\x7f"
)

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)

# Arbitrary text, biased towards what breaks tokenizers and word splitting: odd whitespace,
# literal special-token strings, punctuation glued to words, non-BMP characters.
messy_text = st.lists(
    st.one_of(
        st.text(max_size=12),
        words,
        st.sampled_from(ODD_CHARS + SPECIAL_STRINGS + ["'s", "-", ",", ".", " ", "  ", "😀", "é", "\u0301"]),
    ),
    max_size=25,
).map("".join)


# ---------------------------------------------------------------------------------------------
# Prose: sentences that no cleaning or segmenting rule may drop or alter

_OPENERS = ["We", "Our", "The", "Management", "This", "Each", "Cybersecurity"]
# Letters, a few accented ones (NFKC-stable), and punctuation that HTML must escape.
_PROSE_WORD = st.one_of(
    words,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzéüñ", min_size=1, max_size=10),
    st.sampled_from(["&", "<risk>", '"quoted"', "vendors'", "Board's", "third-party", "(CISO)", "e.g.,"]),
)


@st.composite
def sentences(draw, min_words: int = 8, max_words: int = 30) -> str:
    """One sentence: an opener, lowercase words, a full stop. Never a heading, furniture or TOC line."""
    body = draw(st.lists(_PROSE_WORD, min_size=min_words - 1, max_size=max_words - 1))
    return " ".join([draw(st.sampled_from(_OPENERS)), *body]) + "."


prose_paragraphs = st.lists(sentences(), min_size=1, max_size=8, unique=True)

_INLINE = ["b", "i", "span", "font", "a", "u", "em", "strong", 'span style="font-weight:bold"']


@st.composite
def render_prose(draw, paragraph: str, *, wrap_lines: bool = False) -> str:
    """The paragraph's words as a filer might mark them up: inline tags, entities, odd spacing.

    With ``wrap_lines`` the source also breaks lines inside the paragraph (as many filing agents
    do), which a browser renders as spaces.
    """
    out = []
    gaps = [" ", " ", "  ", "\t", "&nbsp;", " &nbsp;", "&#32;"] + (
        ["\n", " \n", "\r\n", "\n  "] if wrap_lines else []
    )
    tokens = paragraph.split(" ")
    i = 0
    while i < len(tokens):
        n = draw(st.integers(1, 3))
        chunk = " ".join(_html.escape(t, quote=False) for t in tokens[i : i + n])
        if draw(st.booleans()):
            tag = draw(st.sampled_from(_INLINE))
            chunk = f"<{tag}>{chunk}</{tag.split()[0]}>"
        out.append(chunk)
        i += n
        if i < len(tokens):
            out.append(draw(st.sampled_from(gaps)))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# HTML

_TAGS = [
    "p",
    "div",
    "span",
    "b",
    "i",
    "font",
    "a",
    "br",
    "table",
    "tr",
    "td",
    "th",
    "tbody",
    "ul",
    "li",
    "h1",
    "h2",
    "pre",
    "center",
    "hr",
    "ix:nonnumeric",
    "ix:continuation",
    "ix:header",
    "script",
    "style",
    "head",
    "title",
    "sup",
    "img",
    "page",
    "section",
    "xml",
    "textarea",
    "select",
    "option",
    "svg",
    "math",
    "template",
    "frameset",
    "iframe",
    "noscript",
    "plaintext",
    "body",
    "html",
]
_ATTRS = [
    "",
    ' style="display:none"',
    ' style="DISPLAY: none"',
    ' style="padding-left:10pt"',
    ' style="font-family:Wingdings"',
    ' name="dei:EntityRegistrantName"',
    ' colspan="2"',
    ' class="x',
    " style='margin-left:",
    ' contextref="c-1"',
    ' name="dei:DocumentType"',
]
_TEXT_BITS = st.one_of(
    st.text(max_size=20),
    sentences(min_words=2, max_words=12),
    st.sampled_from(
        [
            "Item 1C. Cybersecurity",
            "ITEM 1C",
            "Cybersecurity",
            "Item 2. Properties",
            "PART II",
            "Table of Contents",
            "12",
            "F-3",
            "Page 3 of 90",
            "Acme | 2024 Form 10-K | 27",
            "1,234",
            "$ (12.5)",
            "•",
            "&amp;",
            "&nbsp;",
            "&#0;",
            "&#xD800;",
            "&bogus;",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<",
            ">",
            "</",
            "&",
            "www.example.com/x",
            "a" * 70,
            "Item 1C. Cybersecurity 25",
            "Risk Factors ........ 9",
            "10.1* Credit agreement incorporated by reference",
            "\x00",
            "\ufeff",
        ]
    ),
)


@st.composite
def _element(draw, children):
    tag = draw(st.sampled_from(_TAGS))
    attrs = draw(st.sampled_from(_ATTRS))
    inner = "".join(draw(st.lists(children, max_size=4)))
    close = draw(st.sampled_from(["full", "full", "full", "unclosed", "stray-close"]))
    name = tag.split()[0]
    if close == "unclosed":
        return f"<{tag}{attrs}>{inner}"
    if close == "stray-close":
        return f"{inner}</{name}>"
    return f"<{tag}{attrs}>{inner}</{name}>"


html_fragments = st.recursive(_TEXT_BITS, _element, max_leaves=30)


@st.composite
def html_documents(draw) -> str:
    body = draw(html_fragments)
    head = draw(
        st.sampled_from(["", "<html><body>", "<!DOCTYPE html><html><head><title>x</title></head><body>"])
    )
    tail = draw(st.sampled_from(["", "</body></html>", "</html>"]))
    return head + body + tail


_NESTING = [
    ("<div>", "</div>"),
    ("<span>", "</span>"),
    ("<b>", "</b>"),
    ("<font>", "</font>"),
    ("<p>", "</p>"),
    ("<li>", "</li>"),
    ("<table><tr><td>", "</td></tr></table>"),
    ("<table><tr><td>Outer cell words</td><td>", "</td></tr></table>"),
    ('<ix:nonNumeric name="us-gaap:X">', "</ix:nonNumeric>"),
]


@st.composite
def deeply_nested(draw) -> str:
    """A chain of elements nested hundreds deep (tables in cells included), closed or not."""
    depth = draw(st.integers(1, 700))
    chain = draw(st.lists(st.sampled_from(_NESTING), min_size=1, max_size=3))
    levels = [chain[i % len(chain)] for i in range(depth)]
    inner = draw(
        st.one_of(
            sentences(),
            st.just("<table><tr><td>We keep all of the text in a nested table cell here.</td></tr></table>"),
        )
    )
    closing = "".join(close for _, close in reversed(levels)) if draw(st.booleans()) else ""
    return "".join(open_ for open_, _ in levels) + inner + closing
