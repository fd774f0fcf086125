"""A fine-tune that predicts one class for everything is a warning during the run and an event
that observers and trackers receive, not only a line in the ablation's notes afterwards."""

from __future__ import annotations

import attrs
import pytest
from structlog.testing import capture_logs

from sec_cybert import hookimpl
from sec_cybert.host.collapse import collapsed_heads
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.stages import StageOutcome
from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config


class CollapseTheFineTune:
    """Makes every fine-tune report a collapsed category head and a healthy specificity head,
    whatever it learnt, and keeps what the observers are told."""

    def __init__(self):
        self.events = []

    @hookimpl(wrapper=True)
    def stage_run(self, stage, context):
        outcome = yield
        if stage.name != "finetune":
            return outcome
        collapsed = {"category_collapsed_to": ["Third-Party Risk"], "specificity_collapsed_to": []}
        return StageOutcome(metrics={**outcome.metrics, **collapsed}, report=outcome.report)

    @hookimpl
    def on_train_event(self, event, stage_name, step, metrics, context):
        self.events.append((event, stage_name, step, dict(metrics), context.variant))


class KeepEvents:
    def __init__(self):
        self.logged, self.finished = [], []

    def start_stage(self, context, config):
        pass

    def log(self, context, event, step, metrics):
        self.logged.append((event, context.stage_name, step, dict(metrics)))

    def finish_stage(self, context, result):
        self.finished.append(context.stage_name)

    def finish_run(self, run_dir, summary):
        pass


@pytest.fixture
def tapt_then_finetune(tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][1:]
    return config


def test_a_collapsed_fine_tune_warns_naming_stage_variant_seed_head_and_class(tmp_path, tapt_then_finetune):
    pm = builtin_plugin_manager()
    observer = CollapseTheFineTune()
    pm.register(observer, name="collapse")
    tracker = KeepEvents()
    pipeline = load_run_config(tapt_then_finetune, plugin_manager=pm).pipeline
    with capture_logs() as logs:
        attrs.evolve(pipeline, tracking=(tracker,)).run(tmp_path)
    (warning,) = [e for e in logs if e["log_level"] == "warning" and "collapsed" in e["event"]]
    assert {"stage": "finetune", "variant": "+TAPT", "seed": 7, "head": "category", "class": "Third-Party Risk"}.items() <= warning.items()
    # Said while the stage's tracker run is still open, on the same channel as every event.
    (event,) = [e for e in observer.events if e[0] == "collapsed"]
    assert event[1:] == ("finetune", 7, {"category_collapsed": 1.0}, "+TAPT")  # 7 optimizer steps
    (tracked,) = [e for e in tracker.logged if e[0] == "collapsed"]
    assert tracked == ("collapsed", "finetune", 7, {"category_collapsed": 1.0})
    assert tracker.logged.index(tracked) == len(tracker.logged) - 1 and tracker.finished == ["tapt", "finetune"]
    assert not [e for e in observer.events if e[0] == "collapsed" and e[1] == "tapt"]


def test_only_heads_that_collapsed_are_named():
    metrics = {"category_collapsed_to": [], "specificity_collapsed_to": ["Generic"], "category_macro_f1": 0.1}
    assert collapsed_heads(metrics) == {"specificity": "Generic"}
    assert collapsed_heads({"eval_loss": 1.0}) == {}


def test_the_wandb_tracker_keeps_the_collapsed_class_in_the_summary(tmp_path, tapt_then_finetune, monkeypatch):
    import importlib.machinery
    import sys
    import types

    runs = []

    class Run:
        def __init__(self, **kwargs):
            self.summary, self.logged = {}, []
            self.config = types.SimpleNamespace(update=lambda *a, **k: None)
            self.settings, self.url = types.SimpleNamespace(mode="online"), "https://wandb.test/run"

        def log(self, data, step=None):
            self.logged.append((step, data))

        def finish(self, exit_code=0):
            pass

        def log_artifact(self, artifact):
            pass

    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.init = lambda **kwargs: runs.append(Run(**kwargs)) or runs[-1]
    fake.Artifact = lambda name, type: types.SimpleNamespace(add_file=lambda path: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    pm = builtin_plugin_manager()
    pm.register(CollapseTheFineTune(), name="collapse")
    tapt_then_finetune["tracking"] = "wandb"
    load_run_config(tapt_then_finetune, plugin_manager=pm).pipeline.run(tmp_path)
    finetune = runs[1]
    assert finetune.summary["category_collapsed_to"] == "Third-Party Risk"
    assert (7, {"category_collapsed": 1.0}) in finetune.logged
