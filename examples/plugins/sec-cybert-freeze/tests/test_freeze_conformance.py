"""sec_cybert's conformance checks on this package's three components: what the host relies on."""

from __future__ import annotations

from pathlib import Path

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.plugins import Registry
from sec_cybert.stages import MLMStage, Training
from sec_cybert.testing import builtin_plugin_manager, write_tiny_corpus
from sec_cybert.testing.conformance import check_hardware_profile, check_stage, check_tracker

from sec_cybert_freeze import CIRunnerProfile, FreezeEmbeddingsStage, JsonlTracker, plugin


def plugin_manager():
    pm = builtin_plugin_manager()
    pm.register(plugin, name="freeze")
    return pm


def test_the_hooks_register_three_components():
    registry = Registry.collect(plugin_manager())
    assert registry.get("stage", "freeze-embeddings").factory is FreezeEmbeddingsStage
    assert registry.get("hardware", "ci-runner").factory is CIRunnerProfile
    assert registry.get("tracker", "jsonl").factory is JsonlTracker
    names = [("stage", "freeze-embeddings"), ("hardware", "ci-runner"), ("tracker", "jsonl")]
    assert {registry.get(kind, name).plugin for kind, name in names} == {"freeze"}


def test_stage_conforms(tmp_path):
    from sec_cybert.corpus import JsonlShards
    from sec_cybert.datapath.chunking import ConcatChunker
    from sec_cybert.datapath.masking import TokenMasker

    corpus = write_tiny_corpus(tmp_path / "corpus")
    mlm = MLMStage(
        corpus=JsonlShards(corpus.shards),
        chunker=ConcatChunker(seq_len=64),
        masker=TokenMasker(probability=0.3),
        name="dapt",
        validation_split=0.0,
        training=Training(
            per_device_train_batch_size=8,
            gradient_accumulation_steps=1,
            max_steps=2,
            warmup_ratio=0.0,
            save_strategy="no",
            logging_steps=1,
        ),
    )
    record = check_stage(FreezeEmbeddingsStage(mlm=mlm, steps=1), tmp_path, plugin_manager=plugin_manager())
    assert record.kind == "freeze-embeddings"
    assert record.report["freeze_embeddings"]["frozen_steps"] == 1


def test_hardware_profile_conforms():
    runtime = check_hardware_profile(CIRunnerProfile())
    assert (runtime.device, runtime.dataloader_num_workers, runtime.downgrades) == ("cpu", 0, ())
    assert CIRunnerProfile().problems() == []


def test_tracker_conforms(tmp_path):
    calls = check_tracker(JsonlTracker(), tmp_path, plugin_manager=plugin_manager())
    lines = (tmp_path / "tracked-run" / "tracking.jsonl").read_text().splitlines()
    assert len(lines) == len(calls)  # one line per call


def test_components_build_by_name_from_a_config(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    config = {
        "encoder": "tiny-modernbert",
        "hardware": "ci-runner",
        "tracking": [{"kind": "jsonl", "path": "logs/calls.jsonl"}],
        "stages": [
            {
                "kind": "freeze-embeddings",
                "steps": 100,
                "mlm": {
                    "corpus": {"kind": "paragraphs", "path": str(corpus.paragraphs)},
                    "chunker": {"kind": "paragraph", "max_length": 64},
                    "masker": {"kind": "whole-word"},
                },
            }
        ],
    }
    pipeline = load_run_config(config, plugin_manager=plugin_manager()).pipeline
    (stage,) = pipeline.stages
    assert isinstance(stage, FreezeEmbeddingsStage) and stage.steps == 100 and stage.name == "mlm"
    assert pipeline.tracking == (JsonlTracker(path=Path("logs/calls.jsonl")),)
    assert pipeline.tracking[0].file(tmp_path) == tmp_path / "logs" / "calls.jsonl"
