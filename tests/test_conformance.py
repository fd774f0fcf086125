"""Every registered component of every kind, run for real through ``sec_cybert.testing.conformance``:
the checks a plugin's author runs on theirs."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import attrs
import pytest

from sec_cybert.plugins.hookspecs import PROJECT_NAME
from sec_cybert.plugins.registry import KIND_HOOKS, Registry
from sec_cybert.testing import TINY_ENCODER_OPTIONS, TINY_TRAINING, builtin_plugin_manager, write_tiny_corpus
from sec_cybert.testing.conformance import (
    check_chunker,
    check_corpus_source,
    check_encoder,
    check_hardware_profile,
    check_masker,
    check_stage,
    check_tracker,
)

REGISTRY = Registry.collect(builtin_plugin_manager())
FIXTURES = Path(__file__).parent / "corpus" / "fixtures"


def _registrations(kind):
    return [pytest.param(r, id=r.name) for r in REGISTRY.entries[kind].values()]


def test_every_kind_is_covered_here():
    covered = {"masker", "chunker", "corpus", "hardware", "stage", "encoder", "tracker"}
    assert set(KIND_HOOKS) == covered, "a new component kind needs its conformance test"
    # ... and the built-ins register at least one component of each, so none of the tests below
    # runs over an empty list.
    assert {kind for kind in covered if REGISTRY.entries[kind]} == covered


@pytest.mark.parametrize("registration", _registrations("masker"))
def test_maskers(registration):
    masker = registration.factory()
    assert attrs.has(type(masker))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        masker.probability = 0.5
    check_masker(masker)


@pytest.mark.parametrize("registration", _registrations("chunker"))
def test_chunkers(registration):
    check_chunker(registration.factory())


def _source_params(name, corpus):
    return {
        "jsonl-shards": {"path": corpus.shards},
        "paragraphs": {"path": corpus.paragraphs},
        "edgar-html": {"path": FIXTURES, "min_chars": 100},
    }[name]


@pytest.mark.parametrize("registration", _registrations("corpus"))
def test_corpus_sources(registration, tiny_corpus):
    pytest.importorskip("selectolax") if registration.name == "edgar-html" else None
    assert attrs.has(registration.factory)
    check_corpus_source(registration.factory(**_source_params(registration.name, tiny_corpus)))


@pytest.mark.parametrize("registration", _registrations("hardware"))
def test_hardware_profiles(registration):
    profile = registration.factory()
    assert profile.name == registration.name
    check_hardware_profile(profile)


def _stage(name, corpus):
    from sec_cybert.corpus import Paragraphs
    from sec_cybert.datapath.chunking import ParagraphChunker
    from sec_cybert.datapath.masking import WholeWordMasker
    from sec_cybert.stages import MLM, FineTune, Training

    one_step = Training(**{**TINY_TRAINING, "max_steps": 1, "save_strategy": "no"})
    if name == "mlm":
        return MLM.tapt(Paragraphs(corpus.paragraphs), chunker=ParagraphChunker(max_length=64), masker=WholeWordMasker(), training=one_step)
    if name == "finetune":
        return FineTune.sec_cybert(corpus.train, eval_file=corpus.eval, max_length=64, training=one_step)
    raise AssertionError(f"no example for stage {name!r}: add one here")


@pytest.mark.parametrize("registration", _registrations("stage"))
def test_stages_run_for_real(registration, tmp_path):
    stage = _stage(registration.name, write_tiny_corpus(tmp_path / "corpus"))
    assert isinstance(stage, registration.factory)
    record = check_stage(stage, tmp_path, plugin_manager=builtin_plugin_manager())
    assert record.kind == registration.name and record.metrics["global_step"] == 1


@pytest.mark.parametrize("registration", _registrations("encoder"))
def test_encoders(registration, tmp_path):
    import inspect

    parameters = list(inspect.signature(registration.factory).parameters)
    assert parameters[:2] == ["workdir", "corpus_texts"]
    if registration.name != "tiny-modernbert":
        pytest.skip("a hub encoder: it downloads")
    check_encoder(registration.factory, tmp_path, **TINY_ENCODER_OPTIONS)


class _FakeConfig(dict):
    def update(self, values, allow_val_change=False):
        super().update(values)


class _FakeArtifact:
    def __init__(self, name, type):
        self.name, self.type, self.files = name, type, []

    def add_file(self, path):
        self.files.append(path)


class _FakeRun:
    def __init__(self):
        self.logged, self.summary, self.finished, self.config = [], {}, None, _FakeConfig()

    def log_artifact(self, artifact):
        pass

    def log(self, data, step=None):
        self.logged.append((step, data))

    def finish(self, exit_code=0):
        self.finished = exit_code


@pytest.fixture
def fake_wandb(monkeypatch):
    runs = []

    def init(**kwargs):
        run = _FakeRun()
        run.kwargs = kwargs
        runs.append(run)
        return run

    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # transformers looks for it
    module.init, module.Table = init, lambda columns, data: {"columns": columns, "data": data}
    module.Image, module.Artifact = (lambda path: {"image": path}), _FakeArtifact
    monkeypatch.setitem(sys.modules, "wandb", module)
    return runs


@pytest.mark.parametrize("registration", _registrations("tracker"))
def test_trackers(registration, tmp_path, fake_wandb):
    calls = check_tracker(registration.factory(), tmp_path, plugin_manager=builtin_plugin_manager())
    assert calls[0] == "start_stage" and calls[-1] == "finish_run"


def test_the_built_ins_are_found_through_the_entry_point_group_a_third_party_uses():
    """Was: PROJECT_NAME compared with a string. What matters is that the group the plugin
    manager loads (``PROJECT_NAME``) is the one the package declares its built-ins in."""
    from importlib.metadata import entry_points

    from sec_cybert.plugins.registry import load_entry_point_plugins, new_plugin_manager

    declared = {ep.name for ep in entry_points(group=PROJECT_NAME) if ep.dist and ep.dist.name == "sec-cybert"}
    assert PROJECT_NAME == "sec_cybert" and {"builtin-stages", "builtin-encoders", "builtin-runner"} <= declared
    pm = new_plugin_manager()
    load_entry_point_plugins(pm, allowed=[])
    assert pm.project_name == PROJECT_NAME and {name for name, _ in pm.list_name_plugin()} >= declared
