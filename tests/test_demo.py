"""`sec-cybert demo` end to end: the README's first command, on the embedded corpus.

Its whole chain and ablation, each Trainer stopped after a few steps (``fast_trainers``,
tests/conftest.py): what the demo writes does not depend on how long it trains.
``SEC_CYBERT_FAST=0`` runs it at full length (benchmarks/readme_figures.py times that).
"""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from sec_cybert.cli import main


@pytest.mark.slow
def test_demo_writes_checkpoints_ablation_and_lineage(tmp_path, capsys, monkeypatch, fast_trainers):
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| +DAPT+TAPT" in printed

    for stage in ("dapt", "tapt"):
        model = AutoModelForMaskedLM.from_pretrained(out / stage)
        tokenizer = AutoTokenizer.from_pretrained(out / stage)
        assert model.config.model_type == "modernbert" and tokenizer.mask_token == "[MASK]"
    table = json.loads((out / "ablation.json").read_text())
    # Three seeds per variant: the run's own fine-tune is seed 42 of +DAPT+TAPT, the rest carry their seed.
    assert table["seeds"] == [42, 43, 44]
    finetuned = {directory.rsplit("/", 1)[-1] for row in table["rows"] for directory in row["finetuned"]}
    assert finetuned == {"finetune-dapt-tapt"} | {
        f"finetune-{variant}-seed{seed}" for variant in ("base", "dapt", "dapt-tapt") for seed in (42, 43, 44)
    } - {"finetune-dapt-tapt-seed42"}
    for name in finetuned:
        AutoModel.from_pretrained(out / name)
        AutoTokenizer.from_pretrained(out / name)
    # Intervals over the 20 holdout companies and the three seeds, and the differences in words.
    comparison = table["comparisons"]["finetune"]
    assert comparison["group_by"] == "company" and comparison["seeds"] == 3 and comparison["groups"] >= 10
    markdown = (out / "ablation.md").read_text()
    assert "+DAPT vs base:" in markdown and "+DAPT+TAPT vs +DAPT:" in markdown and " [" in markdown
    assert [row["variant"] for row in table["rows"]] == ["base", "+DAPT", "+DAPT+TAPT"]
    for row in table["rows"]:
        assert {"category_macro_f1", "specificity_macro_f1", "specificity_qwk"} <= set(row["metrics"])
        assert row["evaluated_on"] == ["holdout"]
        assert row["mlm"]["tapt"]["perplexity"] == pytest.approx(math.exp(row["mlm"]["tapt"]["loss"]))
    assert (out / "ablation.md").read_text().startswith("| Variant |")

    lineage = json.loads((out / "lineage.json").read_text())
    inputs = {entry["stage"] + ":" + entry["variant"]: entry["input"] for entry in lineage["stages"]}
    # Relative to the run directory: a moved or shared run directory still names its parts.
    assert inputs["dapt:base"] == "base"
    assert inputs["tapt:+DAPT"] == "dapt"
    assert inputs["finetune:+DAPT+TAPT"] == "tapt"
    assert all("config" in entry and entry["config"] for entry in lineage["stages"])
    # The demo's config is a real file the user can edit and re-run.
    assert (out / "demo.yaml").is_file()
