"""`plan` agrees with what the run then does."""

from __future__ import annotations

import json

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.host.planner import plan_pipeline
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

    from sec_cybert.core.hardware import rtx3090_profile
    from sec_cybert.planning.plan import parameter_count, with_static_memory

    pipeline = load_run_config(tiny_pipeline_config(tiny_corpus), plugin_manager=plugin_manager).pipeline
    base = pipeline.materialize_encoder(tmp_path)
    real = sum(p.numel() for p in AutoModelForMaskedLM.from_pretrained(base).parameters())
    assert parameter_count(base) == real
    plan = plan_pipeline(pipeline)
    assert plan.stages[0].parameters == real
    assert plan.stages[0].static_memory_gib == real * 16 / 2**30
    # ModernBERT-large's 396M parameters in float32 leave a 24 GiB card 18 GiB for activations;
    # 1.5B would not fit at all.
    fits = with_static_memory(plan.stages[0], 396_000_000, rtx3090_profile())
    assert round(fits.static_memory_gib, 1) == 5.9 and not any("FSDP" in n for n in fits.notes)
    too_big = with_static_memory(plan.stages[0], 1_500_000_000, rtx3090_profile())
    assert any("FSDP" in n and "model_dtype: bfloat16" in n for n in too_big.notes)
    assert parameter_count(str(tmp_path / "not-a-model")) is None


# -- degenerate runs ------------------------------------------------------------------------------


def _stage(name="tapt", steps=10, warmup=1, sequences=100, per_step=8, **settings):
    from sec_cybert.planning.plan import StagePlan
    from sec_cybert.stages.training import Training

    values = {
        "lr_scheduler_type": "linear",
        "learning_rate": 1e-3,
        "warmup_ratio": 0.05,
        "max_steps": steps,
        "num_train_epochs": 1.0,
        "per_device_train_batch_size": per_step,
        "gradient_accumulation_steps": 1,
        **settings,
    }
    return StagePlan(
        stage=name,
        sequences_train=sequences,
        optimizer_steps=steps,
        warmup_steps=warmup,
        sequences_per_step=per_step,
        settings=Training(**values),
    )


def _plan(*stages, world_size=1):
    from sec_cybert.planning.plan import Plan

    return Plan(hardware="cpu", world_size=world_size, tokens_per_second=None, throughput_source=None, stages=stages)


def test_one_step_with_warmup_never_leaves_lr_zero():
    from sec_cybert.planning.plan import degenerate_problems

    (line,) = degenerate_problems(_plan(_stage(steps=1, warmup=1)))
    assert line == (
        "tapt: 1 optimizer step, 1 warmup step (linear schedule): the learning rate is 0 at every step, "
        "so the weights never change; set warmup_ratio: 0 (now 0.05), or raise max_steps (now 1)"
    )
    assert degenerate_problems(_plan(_stage(steps=1, warmup=0, warmup_ratio=0.0))) == []


def test_warmup_as_long_as_the_run_never_reaches_the_peak():
    from sec_cybert.planning.plan import degenerate_problems, warmup_steps

    # warmup = ceil(0.7 x 3) = 3: the learning rate runs 0, 1/3, 2/3 of its peak and stops.
    assert warmup_steps(0.7, 3) == 3
    stage = _stage("dapt", steps=3, warmup=3, warmup_ratio=0.7, max_steps=None, num_train_epochs=1.0)
    (line,) = degenerate_problems(_plan(stage))
    assert line == (
        "dapt: 3 optimizer steps, 3 warmup steps (linear schedule): the warmup takes the whole run, so the "
        "learning rate never reaches its peak 0.001 (at most 67% of it); lower warmup_ratio to 0.666 or less "
        "(now 0.7), or raise num_train_epochs (now 1) or lower the batch for more steps per epoch"
    )
    assert warmup_steps(0.666, 3) == 2  # the bound it names is enough
    assert degenerate_problems(_plan(_stage(steps=3, warmup=2))) == []


def test_the_ratio_bound_it_names_always_leaves_a_step_after_warmup():
    from sec_cybert.planning.plan import _ratio_fix, warmup_steps

    for steps in range(2, 3000):
        bound = float(_ratio_fix(steps, None).split()[3])
        assert bound > 0 and warmup_steps(bound, steps) < steps, steps


def test_the_schedule_is_read_from_transformers():
    from sec_cybert.planning.plan import degenerate_problems, lr_multiplier

    # constant ignores warmup: one step trains at the peak.
    assert degenerate_problems(_plan(_stage(steps=1, warmup=1, lr_scheduler_type="constant"))) == []
    assert [lr_multiplier("linear", 2, 2)(step) for step in range(2)] == [0.0, 0.5]
    (line,) = degenerate_problems(_plan(_stage(steps=2, warmup=2, lr_scheduler_type="cosine")))
    assert "(cosine schedule): the warmup takes the whole run" in line
    # a scheduler that needs lr_scheduler_kwargs has the same warmup ramp as linear
    (line,) = degenerate_problems(_plan(_stage(steps=1, warmup=1, lr_scheduler_type="cosine_with_min_lr")))
    assert "the learning rate is 0 at every step" in line


def test_a_corpus_smaller_than_one_effective_batch():
    from sec_cybert.planning.plan import degenerate_problems

    stage = _stage("finetune", steps=4, warmup=0, sequences=20, per_step=64, per_device_train_batch_size=16,
                   gradient_accumulation_steps=2)
    (line,) = degenerate_problems(_plan(stage, world_size=2))
    assert line == (
        "finetune: 20 training sequences, fewer than one effective batch of 64 (16 per device x 2 accumulation "
        "x 2 processes): every optimizer step sees the whole training set, a smaller batch than configured; "
        "add data, or lower per_device_train_batch_size x gradient_accumulation_steps to at most 10"
    )
    assert degenerate_problems(_plan(_stage(sequences=8, per_step=8))) == []


def test_a_healthy_tiny_config_has_no_warning_and_problems_show_in_text_and_json(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    plan = plan_pipeline(load_run_config(config, plugin_manager=plugin_manager).pipeline)
    assert plan.warnings == [] and plan.as_dict()["warnings"] == []
    assert "warning:" not in plan.to_text()
    assert plan.stages[0].settings.max_steps == 3 and plan.stages[2].settings.lr_scheduler_type == "linear"
    config["stages"][1]["training"]["max_steps"] = 1
    config["stages"][2]["training"]["per_device_train_batch_size"] = 64  # the train file holds 56
    plan = plan_pipeline(load_run_config(config, plugin_manager=plugin_manager).pipeline)
    warnings = plan.warnings
    assert [line.split(":")[0] for line in warnings] == ["tapt", "finetune", "finetune"]
    assert "56 training sequences, fewer than one effective batch of 64" in warnings[2]
    assert plan.to_text().splitlines()[-3:] == [f"warning: {line}" for line in warnings]
    assert json.loads(json.dumps(plan.as_dict()))["warnings"] == warnings
