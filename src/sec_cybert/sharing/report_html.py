"""The report's HTML page: its markdown rendered by markdown-it-py (CommonMark with tables),
with each chart embedded as a data URI so that the page is one self-contained file."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}code{background:#f4f4f4}"
)


def markdown_renderer() -> MarkdownIt | None:
    """A CommonMark renderer with tables (raw HTML off), or None without markdown-it-py."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_html(renderer: MarkdownIt, markdown: str, images: Mapping[str, Path], *, title: str) -> str:
    """The page for ``markdown``; an image whose source names a key of ``images`` is inlined."""
    tokens = renderer.parse(markdown)
    for token in tokens:
        for child in token.children or ():
            source = child.attrGet("src") if child.type == "image" else None
            if source in images:
                data = base64.b64encode(images[source].read_bytes()).decode()
                child.attrSet("src", f"data:image/png;base64,{data}")
    body = renderer.renderer.render(tokens, renderer.options, {})
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n{body}</body></html>\n"
    )
