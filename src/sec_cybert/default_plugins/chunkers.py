"""Built-in chunkers."""

from __future__ import annotations

from sec_cybert.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.hookspecs import hookimpl
from sec_cybert.packing import PackingChunker


@hookimpl
def register_chunkers(register):
    register("concat", ConcatChunker)
    register("paragraph", ParagraphChunker)
    register("packed", PackingChunker)
