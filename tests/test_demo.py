"""`sec-cybert demo` end to end: the README's first command, on the embedded corpus."""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from sec_cybert.cli import main


@pytest.mark.slow
def test_demo_writes_checkpoints_ablation_and_lineage(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    out = tmp_path / "demo"
    assert main(["--quiet", "demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| +DAPT+TAPT" in printed

    for stage in ("dapt", "tapt"):
        model = AutoModelForMaskedLM.from_pretrained(out / stage)
        tokenizer = AutoTokenizer.from_pretrained(out / stage)
        assert model.config.model_type == "modernbert" and tokenizer.mask_token == "[MASK]"
    for variant in ("base", "dapt", "dapt-tapt"):
        AutoModel.from_pretrained(out / f"finetune-{variant}")
        AutoTokenizer.from_pretrained(out / f"finetune-{variant}")

    table = json.loads((out / "ablation.json").read_text())
    assert [row["variant"] for row in table["rows"]] == ["base", "+DAPT", "+DAPT+TAPT"]
    for row in table["rows"]:
        assert {"category_macro_f1", "specificity_macro_f1", "specificity_qwk"} <= set(row["metrics"])
        assert row["evaluated_on"] == ["holdout"]
        assert row["mlm"]["tapt"]["perplexity"] == pytest.approx(math.exp(row["mlm"]["tapt"]["loss"]))
    assert (out / "ablation.md").read_text().startswith("| Variant |")

    lineage = json.loads((out / "lineage.json").read_text())
    inputs = {entry["stage"] + ":" + entry["variant"]: entry["input"] for entry in lineage["stages"]}
    assert inputs["dapt:base"] == str(out / "base")
    assert inputs["tapt:+DAPT"] == str(out / "dapt")
    assert inputs["finetune:+DAPT+TAPT"] == str(out / "tapt")
    assert all("config" in entry and entry["config"] for entry in lineage["stages"])
    # The demo's config is a real file the user can edit and re-run.
    assert (out / "demo.yaml").is_file()
