"""The label sets are fixed: downstream configs, metrics and the demo corpus all index into them."""

from __future__ import annotations

import pytest

from sec_cybert.core import taxonomy
from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS, specificity_rank


def test_categories() -> None:
    assert CATEGORIES == (
        "Board Governance",
        "Management Role",
        "Risk Management Process",
        "Third-Party Risk",
        "Incident Disclosure",
        "Strategy Integration",
        "None/Other",
    )


def test_specificity_levels_are_four_ordered_and_distinct() -> None:
    assert SPECIFICITY_LEVELS == (
        "Generic Boilerplate",
        "Sector-Adapted",
        "Firm-Specific",
        "Quantified-Verifiable",
    )
    assert [specificity_rank(level) for level in SPECIFICITY_LEVELS] == [0, 1, 2, 3]


def test_unknown_level_is_reported_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="Generic Boilerplate"):
        specificity_rank("Very Specific")


def test_module_doc_defines_every_label() -> None:
    doc = taxonomy.__doc__ or ""
    for label in (*CATEGORIES, *SPECIFICITY_LEVELS):
        assert f"``{label}``" in doc, label
