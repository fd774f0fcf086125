"""How deeply an HTML document nests its elements, measured on the source before it is parsed.

Before most block elements (``div``, ``ul``, ``blockquote``...) the HTML parser closes any open
``<p>``; to find one it walks the stack of open elements down to the nearest table cell or table
(the "scope"). In a chain of nested blocks that walk is the whole chain, so parsing time grows
with the square of the depth: 20,000 levels take seconds, 100,000 minutes. Real 10-Ks nest a few
dozen levels between table cells. A filing nested deeper than :data:`MAX_NESTING_DEPTH` is
refused with :class:`HtmlTooDeep` (``corpus build`` and ``corpus item1c`` count it as skipped,
with that reason) rather than parsed.

The scan is one pass over the tags with a stack, so it is linear in the size of the file. It
counts what the parser would really nest: formatting tags (``font``, ``b``...) are left out, since
the parser re-opens an unclosed one instead of nesting it again and again, and so are elements
whose end tag may be left out (``p``, ``li``, ``td`` next to ``td``...), which the next one closes.
"""

from __future__ import annotations

import re

from sec_cybert.errors import DataError

MAX_NESTING_DEPTH = 1000

_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)"  # a comment: tags written inside it are not tags
    r"|<(script|style|textarea|title|xmp|plaintext)\b.*?(?:</\1\s*>|\Z)"  # raw text, likewise
    r"|<(/?)([a-zA-Z][^\s/>]*)",  # attributes need not be read
    re.I | re.S,
)
_VOID = frozenset(
    ("area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input", "keygen")
    + ("link", "meta", "param", "source", "track", "wbr")
)
_FORMATTING = frozenset(
    ("a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u")
)
_OPTIONAL_END = frozenset(
    ("p", "li", "dt", "dd", "option", "optgroup", "rb", "rt", "rp", "rtc", "colgroup", "html", "head", "body")
)
# Where the parser's scope walk stops: nesting is counted from the innermost of these.
_SCOPE = frozenset(("table", "td", "th", "caption", "template", "object", "applet", "marquee"))
# Table parts that the next one of the same group closes (<td>a<td>b: two cells, not nested).
_SIBLINGS = {"td": ("td", "th"), "th": ("td", "th"), "tr": ("tr",)}
_SIBLINGS.update({name: ("tbody", "thead", "tfoot") for name in ("tbody", "thead", "tfoot")})
_TABLE_PARTS = frozenset(("table", *_SIBLINGS))


class HtmlTooDeep(DataError):
    """A filing nests its HTML too deeply to parse in reasonable time; ``reason`` is the skip reason."""

    reason = f"HTML nested deeper than {MAX_NESTING_DEPTH} elements (parsing it would take minutes)"

    def __init__(self, depth: int) -> None:
        self.depth = depth
        super().__init__(f"{self.reason}; the filing is skipped (repair the file's markup to include it)")


_SKIPPED = _VOID | _FORMATTING | _OPTIONAL_END


class _Stack:
    """Open elements, with each name's positions and the scope positions kept for O(1) lookups."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.where: dict[str, list[int]] = {}
        self.scopes: list[int] = [-1]

    def last(self, name: str) -> int:
        positions = self.where.get(name)
        return positions[-1] if positions else -1

    def push(self, name: str) -> int:
        """Open ``name``; the length of the chain since the innermost scope."""
        position = len(self.names)
        self.where.setdefault(name, []).append(position)
        if name in _SCOPE:
            self.scopes.append(position)
        self.names.append(name)
        return position - self.scopes[-1]

    def pop_to(self, position: int) -> None:
        """Close the element at ``position`` and everything opened inside it."""
        names, where, scopes = self.names, self.where, self.scopes
        while len(names) > position:
            where[names.pop()].pop()
            if scopes[-1] == len(names):
                scopes.pop()

    def close(self, name: str) -> None:
        """An end tag closes its element, unless a scope (a table, for table parts) lies in between."""
        position = self.last(name)
        if name == "table":
            fence = -1
        elif name in _TABLE_PARTS:
            fence = self.last("table")
        else:
            fence = self.scopes[-1]
        if position > fence:
            self.pop_to(position)

    def open_sibling(self, name: str) -> None:
        """``<td>`` after an unclosed ``<td>`` of the same table closes it (so do rows and bodies)."""
        sibling = max(self.last(other) for other in _SIBLINGS[name])
        if sibling > self.last("table"):
            self.pop_to(sibling)


def nesting_depth(html: str, limit: int = MAX_NESTING_DEPTH) -> int:
    """The deepest chain of nested elements between scope boundaries; stops counting past ``limit``."""
    stack = _Stack()
    deepest = 0
    for _raw, end, tag in _TOKEN.findall(html):
        name = tag.lower()
        if not name or name in _SKIPPED:
            continue
        if end:
            stack.close(name)
            continue
        if name in _SIBLINGS:
            stack.open_sibling(name)
        depth = stack.push(name)
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def check_nesting(html: str, limit: int = MAX_NESTING_DEPTH) -> None:
    """Raise :class:`HtmlTooDeep` when ``html`` nests deeper than ``limit`` elements."""
    depth = nesting_depth(html, limit)
    if depth > limit:
        raise HtmlTooDeep(depth)
