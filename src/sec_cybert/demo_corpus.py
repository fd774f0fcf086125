"""Moved: the demo corpus generator is :mod:`sec_cybert.testing.demo_corpus`.

``sec-cybert demo`` unpacks the shipped copy (:mod:`sec_cybert.demo_data`) instead of generating
it; this name stays importable for code written against it.
"""

from __future__ import annotations

import warnings

from sec_cybert.testing.demo_corpus import (  # noqa: F401 -- re-exported
    FILING_DATE_RANGE,
    PARAGRAPH_WORDS,
    DemoCorpus,
    DemoSize,
    write_demo_corpus,
    write_shipped_copy,
)

__all__ = ["DemoCorpus", "DemoSize", "write_demo_corpus", "write_shipped_copy", "PARAGRAPH_WORDS", "FILING_DATE_RANGE"]

warnings.warn(
    "sec_cybert.demo_corpus moved to sec_cybert.testing.demo_corpus; sec_cybert.demo_data.unpack_demo_corpus "
    "gives the corpus `sec-cybert demo` uses without generating it",
    DeprecationWarning,
    stacklevel=2,
)
