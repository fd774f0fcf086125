"""Lifecycle hooks: stage_run wrappers and on_train_event observers, and W&B tracking built on them."""

from __future__ import annotations

import sys
import types

import pytest

from sec_cybert import hookimpl
from sec_cybert.errors import OptionalDependencyError
from sec_cybert.pipeline import load_run_config
from sec_cybert.stages.training import Training
from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl(wrapper=True)
    def stage_run(self, stage, context):
        self.calls.append(("before", stage.name, context.variant))
        result = yield
        self.calls.append(("after", stage.name, result.metrics["global_step"]))
        return result

    @hookimpl
    def on_train_event(self, event, stage_name, step, metrics):
        self.calls.append((event, stage_name, step, dict(metrics)))


def _one_stage(tiny_corpus, **overrides):
    config = tiny_pipeline_config(tiny_corpus, finetune=False, **overrides)
    config["stages"] = config["stages"][1:]
    return config


def test_wrappers_and_observers_see_every_stage_and_event(tmp_path, tiny_corpus):
    pm = builtin_plugin_manager()
    recorder = Recorder()
    pm.register(recorder, name="recorder")
    load_run_config(_one_stage(tiny_corpus), plugin_manager=pm).pipeline.run(tmp_path)
    assert recorder.calls[0] == ("before", "tapt", "base")
    assert recorder.calls[-1] == ("after", "tapt", 3)
    events = [c for c in recorder.calls if c[0] in ("log", "evaluate", "checkpoint")]
    logs = [c for c in events if c[0] == "log" and "loss" in c[3]]
    assert logs and {"loss", "learning_rate", "grad_norm", "epoch", "tokens_seen"} <= set(logs[-1][3])
    assert any(c[0] == "evaluate" and "eval_loss" in c[3] for c in events)
    assert [c[2] for c in events if c[0] == "checkpoint"] == [2, 3]


def test_wandb_tracking_opens_one_run_per_stage(tmp_path, tiny_corpus, monkeypatch):
    runs = []

    class FakeRun:
        def __init__(self, **kwargs):
            self.kwargs, self.summary, self.finished = kwargs, {}, False
            runs.append(self)

        def finish(self):
            self.finished = True

    fake = types.SimpleNamespace(init=lambda **kwargs: FakeRun(**kwargs))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    # The Trainer's own W&B integration needs the real package: this test checks our wrapper only.
    original = Training.trainer_arguments

    def without_report(self, *args, **kwargs):
        kwargs["report_to"] = "none"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Training, "trainer_arguments", without_report)
    pipeline = load_run_config(_one_stage(tiny_corpus, tracking="wandb"), plugin_manager=builtin_plugin_manager()).pipeline
    pipeline.run(tmp_path)
    (run,) = runs
    assert run.kwargs["name"] == "tapt" and run.kwargs["job_type"] == "mlm" and run.finished
    assert run.summary["global_step"] == 3


def test_wandb_missing_is_a_clear_error(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    pipeline = load_run_config(_one_stage(tiny_corpus, tracking="wandb"), plugin_manager=builtin_plugin_manager()).pipeline
    with pytest.raises(OptionalDependencyError, match=r"pip install 'sec-cybert\[wandb\]'"):
        pipeline.run(tmp_path)
