"""Built-in corpus sources."""

from __future__ import annotations

from sec_cybert.corpus.sources import JsonlShards, Paragraphs
from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl
def register_corpus_sources(register):
    register("jsonl-shards", JsonlShards)
    register("paragraphs", Paragraphs)
