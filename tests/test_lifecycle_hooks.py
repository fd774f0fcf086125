"""Lifecycle hooks: stage_run wrappers and on_train_event observers, and W&B tracking built on them."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import attrs
import pytest

from sec_cybert import hookimpl
from sec_cybert.errors import OptionalDependencyError
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl(wrapper=True)
    def stage_run(self, stage, context):
        self.calls.append(("before", stage.name, context.variant))
        outcome = yield
        self.calls.append(("after", stage.name, outcome.metrics["global_step"]))
        return outcome

    @hookimpl
    def on_train_event(self, event, stage_name, step, metrics, context):
        self.calls.append((event, stage_name, step, dict(metrics), context.variant, context.tag))


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
    assert {(c[4], c[5]) for c in events} == {("base", "base")}


@pytest.mark.slow
def test_observers_tell_the_fine_tunes_of_an_ablation_apart(tmp_path, tiny_corpus):
    pm = builtin_plugin_manager()
    recorder = Recorder()
    pm.register(recorder, name="recorder")
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][1:]  # TAPT, then the fine-tune
    load_run_config(config, plugin_manager=pm).pipeline.ablation(tmp_path, seeds=[1, 2])
    finetune = {(c[4], c[5]) for c in recorder.calls if len(c) == 6 and c[1] == "finetune"}
    # The run's own fine-tune (seed 7, tag "tapt"), then each variant with seeds 1 and 2.
    assert finetune == {("+TAPT", "tapt"), ("base", "base-seed1"), ("base", "base-seed2"), ("+TAPT", "tapt-seed1"), ("+TAPT", "tapt-seed2")}


class FakeConfig(dict):
    def update(self, values, allow_val_change=False):
        super().update(values)


class FakeRun:
    def __init__(self, **kwargs):
        self.kwargs, self.summary, self.logged, self.exit_code, self.artifacts = kwargs, {}, [], None, []
        self.config = FakeConfig(kwargs.get("config") or {})
        self.settings, self.url = types.SimpleNamespace(mode="online"), "https://wandb.test/run"

    def log(self, data, step=None):
        self.logged.append((step, data))

    def log_artifact(self, artifact):
        self.artifacts.append(artifact)

    def finish(self, exit_code=0):
        self.exit_code = exit_code


class FakeArtifact:
    def __init__(self, name, type):
        self.name, self.type, self.files = name, type, []

    def add_file(self, path):
        self.files.append(path)


@pytest.fixture
def wandb_runs(monkeypatch):
    """A stand-in for the wandb module that keeps what each run was sent."""
    runs = []
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # transformers looks for it
    fake.init = lambda **kwargs: runs.append(FakeRun(**kwargs)) or runs[-1]
    fake.Table = lambda columns, data: {"columns": columns, "data": data}
    fake.Image = lambda path: {"image": path}
    fake.Artifact = FakeArtifact
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return runs


def test_wandb_tracker_records_each_stage_run_with_our_config_curves_and_artifacts(tmp_path, tiny_corpus, wandb_runs):
    config = tiny_pipeline_config(tiny_corpus, tracking={"kind": "wandb", "tags": ["unit"], "log_checkpoints": True})
    config["stages"] = config["stages"][1:]
    load_run_config(config, plugin_manager=builtin_plugin_manager()).pipeline.ablation(tmp_path / "run")
    runs = wandb_runs
    names = [run.kwargs["name"] for run in runs]
    assert names == ["tapt-base", "finetune-tapt", "lineage", "finetune-base", "ablation"]
    tapt = runs[0]
    assert tapt.kwargs["job_type"] == "mlm" and tapt.kwargs["tags"] == ["unit"]
    assert tapt.kwargs["config"]["stage"]["masker"]["kind"] == "whole-word"  # our config, not the Trainer's
    assert tapt.kwargs["config"]["variant"] == "base" and tapt.exit_code == 0
    assert tapt.config["report"]["selection"]["documents_kept"] > 0  # the data report, once known
    curves = [data for _, data in tapt.logged]
    assert any("loss" in data and "tokens_per_second" in data for data in curves)
    assert any("eval_perplexity" in data for data in curves) and tapt.summary["global_step"] == 3
    finetune = runs[1]
    assert "category_macro_f1" in finetune.summary and finetune.summary["examples"] == 28  # holdout metrics
    (artifact,) = tapt.artifacts
    assert artifact.type == "model" and any(f.endswith("model.safetensors") for f in artifact.files)
    assert not any("/checkpoints/" in f for f in artifact.files)
    assert runs[2].artifacts[0].files[0].endswith("lineage.json")
    group = tapt.kwargs["group"]
    assert group.startswith("run-") and {run.kwargs["group"] for run in runs} == {group}
    table = runs[-1].logged[0][1]
    assert table["ablation"]["columns"][:2] == ["task", "variant"] and table["ablation_chart"]["image"].endswith("ablation.png")
    # Each metric with its interval, and the paired difference of +TAPT against base.
    columns = table["ablation"]["columns"]
    assert columns[2:5] == ["category_macro_f1", "category_macro_f1 low", "category_macro_f1 high"]
    for row in table["ablation"]["data"]:
        assert row[3] <= row[2] <= row[4]
    differences = table["paired_differences"]
    assert differences["columns"][-1] == "p_value"
    assert {(d[1], d[2], d[3]) for d in differences["data"]} >= {("category_macro_f1", "+TAPT", "base")}


@pytest.mark.slow
def test_wandb_offline_writes_its_runs(tmp_path, tiny_corpus, monkeypatch):
    """With the real package, offline: the runs and the ablation table land on disk."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = tiny_pipeline_config(tiny_corpus, tracking={"kind": "wandb", "mode": "offline"})
    config["stages"] = config["stages"][1:]
    load_run_config(config, plugin_manager=builtin_plugin_manager()).pipeline.ablation(tmp_path / "run")
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 5 and all(list(run.glob("run-*.wandb")) for run in runs)
    tables = list((tmp_path / "wandb").glob("offline-run-*/files/media/table/ablation*.table.json"))
    (table,) = tables
    data = json.loads(table.read_text())
    assert data["columns"][:2] == ["task", "variant"] and [row[1] for row in data["data"]] == ["base", "+TAPT"]


def test_wandb_missing_is_a_clear_error_before_anything_runs(tmp_path, tiny_corpus, monkeypatch):
    from sec_cybert.errors import ConfigError
    from sec_cybert.host.pipeline import Pipeline

    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match=r"^tracking: the wandb tracker needs the optional package 'wandb': pip install 'sec-cybert\[wandb\]'"):
        load_run_config(_one_stage(tiny_corpus, tracking="wandb"), plugin_manager=builtin_plugin_manager())
    # By name from Python, the tracker is built when the run starts: still before anything trains.
    stages = load_run_config(_one_stage(tiny_corpus), plugin_manager=builtin_plugin_manager()).pipeline.stages
    pipeline = Pipeline(encoder="tiny-modernbert", stages=stages, hardware="cpu", tracking="wandb", plugin_manager=builtin_plugin_manager())
    with pytest.raises(OptionalDependencyError, match=r"pip install 'sec-cybert\[wandb\]'"):
        pipeline.run(tmp_path)
    assert not (tmp_path / "tapt").exists()


def test_a_failing_tracker_never_stops_training(tmp_path, tiny_corpus):
    class Broken:
        def start_stage(self, context, config):
            raise RuntimeError("no network")

        def log(self, context, event, step, metrics):
            raise AssertionError("must not be called after a failure in the stage")

        def finish_stage(self, context, result):
            pass

        def finish_run(self, run_dir, summary):
            pass

    pipeline = load_run_config(_one_stage(tiny_corpus), plugin_manager=builtin_plugin_manager()).pipeline
    result = attrs.evolve(pipeline, tracking=(Broken(),)).run(tmp_path)
    assert result.variants[-1].mlm_result.metrics["global_step"] == 3
