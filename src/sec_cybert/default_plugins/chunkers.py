"""Built-in chunkers."""

from __future__ import annotations

from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.datapath.packing import PackingChunker
from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl
def register_chunkers(register):
    register("concat", ConcatChunker)
    register("paragraph", ParagraphChunker)
    register("packed", PackingChunker)
