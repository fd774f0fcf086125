"""The label sets are fixed: downstream configs, metrics and the demo corpus all index into them."""

from __future__ import annotations

import pytest

from sec_cybert.core import taxonomy
from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS, specificity_rank


@pytest.mark.parametrize("config", ["finetune/modernbert.yaml", "pipeline/sec-cybert-large.yaml", "pipeline/demo.yaml"])
def test_the_task_heads_and_the_shipped_configs_use_the_seven_categories_in_order(config, tmp_path) -> None:
    """Saved heads index into these tuples: the shipped configs and ``FineTune.sec_cybert`` must
    list the same labels in the same order (was: a test that compared the constants alone)."""
    from importlib import resources

    import yaml

    from sec_cybert.stages import FineTune

    assert CATEGORIES == (
        "Board Governance",
        "Management Role",
        "Risk Management Process",
        "Third-Party Risk",
        "Incident Disclosure",
        "Strategy Integration",
        "None/Other",
    )
    train = tmp_path / "train.jsonl"
    train.write_text("")
    assert [(h.name, tuple(h.labels)) for h in FineTune.sec_cybert(train).heads] == [
        ("category", CATEGORIES),
        ("specificity", SPECIFICITY_LEVELS),
    ]
    data = yaml.safe_load(resources.files("sec_cybert.configs").joinpath(config).read_text(encoding="utf-8"))
    (stage,) = [s for s in data["stages"] if s["kind"] == "finetune"]
    assert [(h["name"], tuple(h["labels"])) for h in stage["heads"]] == [
        ("category", CATEGORIES),
        ("specificity", SPECIFICITY_LEVELS),
    ]


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
