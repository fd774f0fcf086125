"""Corpus sources and corpus preparation (EDGAR fetch, HTML cleaning, Item 1C, selection, stats).

``corpus.JsonlShards`` and ``corpus.Paragraphs`` are the built-in sources.
"""

from sec_cybert.corpus.sources import JsonlShards, Paragraphs

__all__ = ["JsonlShards", "Paragraphs"]
