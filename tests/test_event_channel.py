"""One channel for events: trackers hear a run through the same hooks as any plugin observer."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from sec_cybert import hookimpl
from sec_cybert.core.context import StageContext
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.host.tracking import PLUGIN_PREFIX, trackers_attached
from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config


class Observer:
    """A plugin that observes the run through the hooks."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def on_stage_start(self, context, config):
        self.calls.append(("start_stage", context.stage_name, config["name"]))

    @hookimpl
    def on_train_event(self, event, stage_name, step, metrics, context):
        self.calls.append(("log", event, step, dict(metrics)))

    @hookimpl
    def on_stage_finish(self, context, result):
        self.calls.append(("finish_stage", context.stage_name, result.fingerprint if result else None))

    @hookimpl
    def on_run_finish(self, run_dir, summary):
        self.calls.append(("finish_run", str(run_dir), sorted(summary)))


class Tracker:
    """A tracker (the Tracker Protocol), writing down the same things as the observer."""

    def __init__(self):
        self.calls = []

    def start_stage(self, context, config):
        self.calls.append(("start_stage", context.stage_name, config["name"]))

    def log(self, context, event, step, metrics):
        self.calls.append(("log", event, step, dict(metrics)))

    def finish_stage(self, context, result):
        self.calls.append(("finish_stage", context.stage_name, result.fingerprint if result else None))

    def finish_run(self, run_dir, summary):
        self.calls.append(("finish_run", str(run_dir), sorted(summary)))


def _attached(pm):
    return [name for name, _ in pm.list_name_plugin() if name and name.startswith(PLUGIN_PREFIX)]


def test_a_tracker_hears_exactly_what_a_plugin_observer_hears_and_is_gone_after_the_run(tmp_path, tiny_corpus):
    pm = builtin_plugin_manager()
    observer, tracker = Observer(), Tracker()
    pm.register(observer, name="observer")
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]  # TAPT only
    pipeline = load_run_config(config, plugin_manager=pm).pipeline
    attrs.evolve(pipeline, tracking=(tracker,)).run(tmp_path / "run")
    assert tracker.calls == observer.calls
    kinds = [call[0] for call in tracker.calls]
    assert kinds[0] == "start_stage" and kinds[-2:] == ["finish_stage", "finish_run"]
    assert {"log"} == set(kinds[1:-2])  # every training event in between, once each
    assert [c[2] for c in tracker.calls if c[:2] == ("log", "checkpoint")] == [2, 3]
    assert tracker.calls[-1] == ("finish_run", str(tmp_path / "run"), ["lineage"])
    assert json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())["fingerprint"] == tracker.calls[-2][2]
    assert _attached(pm) == []  # the process-wide manager keeps no tracker of a finished run


def test_trackers_are_taken_off_the_plugin_manager_when_the_run_raises(tmp_path):
    pm = builtin_plugin_manager()
    tracker = Tracker()
    with pytest.raises(RuntimeError, match="stage failed"), trackers_attached(pm, [tracker]):
        assert len(_attached(pm)) == 1
        pm.hook.on_run_finish(run_dir=tmp_path, summary={"lineage": {}})
        raise RuntimeError("stage failed")
    assert _attached(pm) == []
    assert tracker.calls == [("finish_run", str(tmp_path), ["lineage"])]


def test_an_inner_block_leaves_a_tracker_it_did_not_attach_to_the_outer_one(tmp_path):
    pm = builtin_plugin_manager()
    tracker = Tracker()
    with trackers_attached(pm, [tracker]):
        with trackers_attached(pm, [tracker]):
            pass
        assert len(_attached(pm)) == 1
        pm.hook.on_run_finish(run_dir=tmp_path, summary={})
    assert _attached(pm) == []
    assert len(tracker.calls) == 1  # heard once, not once per block


def _context(tmp_path, stage):
    return StageContext(run_dir=tmp_path, init_from="base", hardware=None, seed=0, stage_name=stage)


def test_a_failing_tracker_is_off_for_the_rest_of_its_stage_only_and_never_silences_the_others(tmp_path):
    class FailsOnFirstLog(Tracker):
        def log(self, context, event, step, metrics):
            if context.stage_name == "dapt":
                self.calls.append(("log-failed", step))
                raise ConnectionError("network down")
            super().log(context, event, step, metrics)

    pm = builtin_plugin_manager()
    flaky, steady = FailsOnFirstLog(), Tracker()
    with trackers_attached(pm, [flaky, steady]):
        for stage in ("dapt", "tapt"):
            context = _context(tmp_path, stage)
            pm.hook.on_stage_start(context=context, config={"name": stage})
            for step in (1, 2):
                pm.hook.on_train_event(event="log", stage_name=stage, step=step, metrics={"loss": 1.0}, context=context)
            pm.hook.on_stage_finish(context=context, result=None)
    assert flaky.calls == [
        ("start_stage", "dapt", "dapt"),
        ("log-failed", 1),  # then nothing more of dapt: no step 2, no finish_stage
        ("start_stage", "tapt", "tapt"),  # back for the next stage
        ("log", "log", 1, {"loss": 1.0}),
        ("log", "log", 2, {"loss": 1.0}),
        ("finish_stage", "tapt", None),
    ]
    assert [c[0] for c in steady.calls] == ["start_stage", "log", "log", "finish_stage"] * 2


def test_a_plan_holds_the_stages_own_settings_and_its_json_says_the_step_settings_only(tmp_path, tiny_corpus):
    from sec_cybert.host.planner import plan_pipeline
    from sec_cybert.planning.plan import StepSettings

    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]
    pipeline = load_run_config(config, plugin_manager=builtin_plugin_manager()).pipeline
    plan = plan_pipeline(pipeline)
    assert plan.stages[0].settings is pipeline.stages[0].training  # one schema: the stage's own
    written = json.loads(json.dumps(plan.as_dict()))["stages"][0]["settings"]
    assert set(written) == set(StepSettings.__annotations__)
    assert written["learning_rate"] == pipeline.stages[0].training.learning_rate


def test_one_registry_serves_a_whole_run(tmp_path, tiny_corpus, monkeypatch):
    """The config's registry is the run's: no step of ``run`` collects the plugins again."""
    import sec_cybert.plugins.registry as registry_module

    pm = builtin_plugin_manager()
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]
    for stage in config["stages"]:
        stage["training"] = {**stage["training"], "max_steps": 1, "save_strategy": "no", "warmup_ratio": 0.0}
    pipeline = load_run_config(config, plugin_manager=pm).pipeline
    collected = []
    original = registry_module.Registry.collect
    monkeypatch.setattr(
        registry_module.Registry, "collect", classmethod(lambda cls, *a, **k: collected.append(a) or original(*a, **k))
    )
    pipeline.run(Path(tmp_path) / "run")
    assert collected == []


def test_a_stage_that_is_not_one_is_named_from_the_pipelines_registry(monkeypatch):
    """The error names the object's class; it reads the registry the pipeline collected."""
    import sec_cybert.plugins.registry as registry_module
    from sec_cybert import Pipeline
    from sec_cybert.errors import ConfigError

    class NotAStage:
        name = "broken"

    registry = registry_module.Registry.collect(builtin_plugin_manager())
    collected = []
    original = registry_module.Registry.collect
    monkeypatch.setattr(
        registry_module.Registry, "collect", classmethod(lambda cls, *a, **k: collected.append(a) or original(*a, **k))
    )
    with pytest.raises(ConfigError, match=r"stages\[0\] \(NotAStage\) is not a Stage: it needs "):
        Pipeline(encoder="tiny-modernbert", stages=[NotAStage()], registry=registry)
    assert collected == []
