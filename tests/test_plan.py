"""`plan` agrees with what the run then does."""

from __future__ import annotations

import json

from sec_cybert.pipeline import load_run_config
from sec_cybert.plan import plan_pipeline
from sec_cybert.testing import TINY_TRAINING, tiny_pipeline_config


def test_plan_matches_the_trainer(tmp_path, tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    epochs = {**TINY_TRAINING, "max_steps": None, "num_train_epochs": 2, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 3, "warmup_ratio": 0.1, "save_strategy": "no"}
    for stage in config["stages"]:
        stage["training"] = dict(epochs)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    plan = plan_pipeline(pipeline)
    pipeline.run(tmp_path)
    for stage_plan in plan.stages:
        directory = tmp_path / (stage_plan.stage if stage_plan.kind == "mlm" else "finetune-dapt-tapt")
        record = json.loads((directory / "stage.json").read_text())
        assert record["metrics"]["global_step"] == stage_plan.optimizer_steps, stage_plan.stage
        assert stage_plan.warmup_steps == -(-stage_plan.optimizer_steps // 10)
        assert stage_plan.sequences_per_step == 12
    dapt = plan.stages[0]
    stage_report = json.loads((tmp_path / "dapt" / "stage.json").read_text())["report"]
    assert dapt.tokens == stage_report["selection"]["tokens_kept"]
    assert (dapt.sequences_train, dapt.sequences_validation) == (stage_report["train_blocks"], stage_report["validation_blocks"])
    assert "optimizer steps" in plan.to_text()
