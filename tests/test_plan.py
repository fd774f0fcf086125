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


def test_plan_reports_parameters_and_static_memory(tmp_path, tiny_corpus, plugin_manager):
    from transformers import AutoModelForMaskedLM

    from sec_cybert.hardware import rtx3090_profile
    from sec_cybert.plan import _with_memory, parameter_count

    pipeline = load_run_config(tiny_pipeline_config(tiny_corpus), plugin_manager=plugin_manager).pipeline
    base = pipeline._materialize_encoder(tmp_path)
    real = sum(p.numel() for p in AutoModelForMaskedLM.from_pretrained(base).parameters())
    assert parameter_count(base) == real
    plan = plan_pipeline(pipeline)
    assert plan.stages[0].parameters == real
    assert plan.stages[0].static_memory_gib == real * 16 / 2**30
    # ModernBERT-large's 396M parameters in float32 leave a 24 GiB card 18 GiB for activations;
    # 1.5B would not fit at all.
    fits = _with_memory(plan.stages[0], 396_000_000, rtx3090_profile())
    assert round(fits.static_memory_gib, 1) == 5.9 and not any("FSDP" in n for n in fits.notes)
    too_big = _with_memory(plan.stages[0], 1_500_000_000, rtx3090_profile())
    assert any("FSDP" in n and "model_dtype: bfloat16" in n for n in too_big.notes)
    assert parameter_count(str(tmp_path / "not-a-model")) is None
