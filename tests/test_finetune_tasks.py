"""Other tasks fit the fine-tune stage: one plain head, multi-label, threshold ordinal; multi-seed ablation."""

from __future__ import annotations

import json

import pytest

from sec_cybert.core.taxonomy import CATEGORIES
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import TINY_TRAINING, labeled_paragraphs, tiny_pipeline_config, write_jsonl


def _finetune_only(tiny_corpus, stage):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = [{**config["stages"][2], **stage}]
    return config


def test_single_head_classifier(tmp_path, tiny_corpus, plugin_manager):
    stage = {
        "heads": [{"name": "category", "kind": "softmax", "class_weights": "balanced", "labels": ["Board Governance", "Management Role", "Risk Management Process", "Third-Party Risk", "Incident Disclosure", "Strategy Integration", "None/Other"]}],
        "pooling": "mean",
        "metric_for_best_model": "category_accuracy",
        "training": {**TINY_TRAINING, "save_strategy": "epoch", "max_steps": None, "num_train_epochs": 1, "gradient_checkpointing": True},
    }
    result = load_run_config(_finetune_only(tiny_corpus, stage), plugin_manager=plugin_manager).pipeline.run(tmp_path)
    metrics = result.finetuned[("finetune", "base", 7)].metrics
    assert {"category_accuracy", "category_macro_f1", "category_per_class_f1", "category_confusion_matrix"} <= set(metrics)
    assert not any(key.startswith("specificity") for key in metrics)
    assert sum(map(sum, metrics["category_confusion_matrix"])) == metrics["examples"] == 28


def test_multilabel_and_threshold_heads(tmp_path, tiny_corpus, plugin_manager):
    records = [
        {"text": f"The audit committee and the CISO review vendor risk {i}.", "topics": ["board", "vendors"] if i % 2 else ["management"], "level": str(i % 3)}
        for i in range(24)
    ]
    train = write_jsonl(tmp_path / "train.jsonl", records)
    stage = {
        "train_file": str(train),
        "eval_file": str(train),
        "holdout_file": None,
        "pooling": "attention",
        "metric_for_best_model": "level_mae",
        "heads": [
            {"name": "topics", "kind": "multilabel", "labels": ["board", "management", "vendors"]},
            {"name": "level", "kind": "thresholds", "labels": ["0", "1", "2"]},
        ],
    }
    config = _finetune_only(tiny_corpus, stage)
    config["contamination"] = {"finetune": "warn"}  # this test is about the heads: eval is train on purpose
    result = load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    metrics = result.finetuned[("finetune", "base", 7)].metrics
    assert {"topics_micro_f1", "topics_subset_accuracy", "level_qwk", "level_mae"} <= set(metrics)
    assert metrics["evaluated_on"] == "eval"


def test_unknown_best_metric_is_a_config_error(tiny_corpus, plugin_manager):
    from sec_cybert.errors import ConfigError

    config = _finetune_only(tiny_corpus, {"metric_for_best_model": "category_qwk"})
    with pytest.raises(ConfigError, match="category_qwk.*choose one of category_accuracy, category_macro_f1"):
        load_run_config(config, plugin_manager=plugin_manager)


@pytest.mark.slow
def test_ablation_over_seeds_reports_mean_and_std(tmp_path, tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][:1] + config["stages"][2:]  # DAPT and fine-tune
    config["stages"][0]["training"] = {**TINY_TRAINING, "max_steps": 1, "save_strategy": "no"}
    run = load_run_config(config, plugin_manager=plugin_manager)
    table = run.pipeline.ablation(tmp_path, seeds=[1, 2])
    data = json.loads((tmp_path / "ablation.json").read_text())
    assert data["seeds"] == [1, 2] and [row["variant"] for row in data["rows"]] == ["base", "+DAPT"]
    for row in data["rows"]:
        metric = row["metrics"]["category_macro_f1"]
        assert len(metric["values"]) == 2 and metric["std"] >= 0
        assert len(row["finetuned"]) == 2 and row["finetuned"][0].endswith("-seed1")
    # Two seeds, paired on one holdout: an interval over groups and seeds in each cell.
    row = data["rows"][0]
    assert row["intervals"]["category_macro_f1"]["estimate"] == pytest.approx(row["metrics"]["category_macro_f1"]["mean"])
    assert data["comparisons"]["finetune"]["seeds"] == 2
    assert "[" in table.to_markdown().splitlines()[2]
    assert (tmp_path / "ablation.png").stat().st_size > 1000


def test_a_finetune_only_pipeline_trains_its_tokenizer_on_the_training_texts(tmp_path, tiny_corpus, plugin_manager):
    from transformers import AutoTokenizer

    config = _finetune_only(tiny_corpus, {})
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    # Trained on the paragraphs: a frequent word is a few merged tokens, not ten single bytes.
    assert len(tokenizer.tokenize(" committee")) <= 3


def test_a_class_absent_from_the_holdout_is_reported_not_scored_zero(tmp_path, tiny_corpus, plugin_manager):
    holdout = write_jsonl(
        tmp_path / "holdout.jsonl",
        [r for r in labeled_paragraphs(1, 3) if r["category"] != "Incident Disclosure"],
    )
    run = load_run_config(_finetune_only(tiny_corpus, {"holdout_file": str(holdout)}), plugin_manager=plugin_manager)
    table = run.pipeline.ablation(tmp_path / "run", seeds=[1, 2])
    stage = json.loads((tmp_path / "run" / "finetune-base-seed1" / "stage.json").read_text())["metrics"]
    assert stage["evaluated_on"] == "holdout" and stage["category_absent_classes"] == ["Incident Disclosure"]
    assert stage["specificity_absent_classes"] == []
    assert stage["category_per_class_f1"]["Incident Disclosure"] is None
    # Its row is empty: the confusion matrix keeps every class.
    assert sum(stage["category_confusion_matrix"][CATEGORIES.index("Incident Disclosure")]) == 0
    row = json.loads((tmp_path / "run" / "ablation.json").read_text())["rows"][0]
    assert row["breakdowns"]["category_per_class_f1"]["Incident Disclosure"] is None  # null across seeds, not averaged
    assert isinstance(row["breakdowns"]["category_per_class_f1"]["Board Governance"], float)
    assert row["notes"]["category_absent_classes"] == ["Incident Disclosure"]
    assert "base: category_absent_classes (over seeds): Incident Disclosure." in table.to_markdown()
