"""Stage records: fingerprints, per-stage commands sharing a directory, variant names, encoder recipes."""

from __future__ import annotations

import json

import pytest

from sec_cybert.core.context import StageContext
from sec_cybert.errors import ConfigError
from sec_cybert.host.config import unstructure
from sec_cybert.host.lifecycle import fingerprint_of
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.plugins.registry import get_registry
from sec_cybert.stages.loading import load_pretrained
from sec_cybert.testing import tiny_pipeline_config


def test_fingerprint_ignores_settings_left_at_their_default(tiny_corpus, plugin_manager, tmp_path):
    config = tiny_pipeline_config(tiny_corpus)
    stage = load_run_config(config, plugin_manager=plugin_manager).pipeline.stages[0]
    config["stages"][0]["training"]["model_dtype"] = "float32"  # the default, spelled out
    explicit = load_run_config(config, plugin_manager=plugin_manager).pipeline.stages[0]
    context = StageContext(run_dir=tmp_path, init_from="x", hardware=None, seed=1, plugin_manager=None)
    registry = get_registry(plugin_manager)

    def fingerprint(stage):
        return fingerprint_of(unstructure(stage, registry, omit_defaults=True), context)

    assert fingerprint(stage) == fingerprint(explicit)
    config["stages"][0]["training"]["learning_rate"] = 0.002
    changed = load_run_config(config, plugin_manager=plugin_manager).pipeline.stages[0]
    assert fingerprint(changed) != fingerprint(stage)


@pytest.mark.slow  # two runs, one per command
def test_per_stage_commands_share_lineage_and_name_variants_by_their_history(tmp_path, tiny_corpus, plugin_manager):
    full = tiny_pipeline_config(tiny_corpus)
    dapt_config = {**full, "stages": [full["stages"][0]]}
    load_run_config(dapt_config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    finetune_config = {"encoder": str(tmp_path / "dapt"), "hardware": "cpu", "seed": 7, "stages": [full["stages"][2]]}
    result = load_run_config(finetune_config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    assert [v.name for v in result.variants] == ["base", "+DAPT"]
    assert (tmp_path / "finetune-dapt" / "heads.json").is_file()
    assert not (tmp_path / "finetune-base").exists()
    lineage = json.loads((tmp_path / "lineage.json").read_text())
    assert [(e["stage"], e["variant"]) for e in lineage["stages"]] == [("dapt", "base"), ("finetune", "+DAPT")]
    table = result.ablation()
    assert [row["variant"] for row in table.rows] == ["base", "+DAPT"]


def test_tiny_encoder_refuses_a_base_built_with_other_options(tmp_path, tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    config["encoder_options"]["hidden_size"] = 48
    with pytest.raises(ConfigError, match="other encoder_options .hidden_size."):
        load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)


def test_attention_steps_down_when_a_model_has_no_kernel_for_it():
    calls = []

    class Auto:
        @staticmethod
        def from_pretrained(reference, attn_implementation, dtype):
            calls.append(attn_implementation)
            if attn_implementation != "sdpa":
                raise ValueError(f"{attn_implementation} attention is not supported by this architecture")
            return "model"

    assert load_pretrained(Auto, "x", attn_implementation="flash_attention_2", dtype=None) == "model"
    assert calls == ["flash_attention_2", "sdpa"]


def test_missing_checkpoint_is_one_clear_error(tmp_path):
    from transformers import AutoModelForMaskedLM

    from sec_cybert.errors import SecCybertError

    with pytest.raises(SecCybertError, match="could not load .*point encoder at a local checkpoint"):
        load_pretrained(AutoModelForMaskedLM, str(tmp_path / "nothing-here"), attn_implementation="sdpa", dtype=None)


def test_a_model_without_sdpa_trains_by_stepping_down_to_eager(tmp_path, tiny_corpus, plugin_manager):
    from transformers import DebertaV2Config, DebertaV2ForMaskedLM

    from sec_cybert.core.encoders import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(["the audit committee oversees cyber risk"] * 40, vocab_size=300)
    config = DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    DebertaV2ForMaskedLM(config).save_pretrained(tmp_path / "deberta")
    tokenizer.save_pretrained(tmp_path / "deberta")
    pipeline_config = tiny_pipeline_config(tiny_corpus, finetune=False)
    del pipeline_config["encoder_options"]
    pipeline_config["encoder"] = str(tmp_path / "deberta")
    pipeline_config["stages"] = pipeline_config["stages"][1:]  # sdpa, from the cpu profile
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        load_run_config(pipeline_config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    steps = [e for e in logs if e["event"] == "attention implementation unsupported by this model"]
    assert steps and steps[0]["requested"] == "sdpa" and steps[0]["using"] == "eager"
    assert (tmp_path / "run" / "tapt" / "stage.json").is_file()


def test_loading_an_encoder_from_an_mlm_checkpoint_reports_one_line(tmp_path, capfd):
    from structlog.testing import capture_logs
    from transformers import AutoModel, ModernBertForMaskedLM

    from sec_cybert.testing import tiny_modernbert_config

    config = tiny_modernbert_config(vocab_size=64, hidden_size=16, intermediate_size=32, max_position_embeddings=64)
    ModernBertForMaskedLM(config).save_pretrained(tmp_path / "mlm")
    with capture_logs() as logs:
        load_pretrained(AutoModel, str(tmp_path / "mlm"), attn_implementation="sdpa", dtype=None)
    assert "LOAD REPORT" not in capfd.readouterr().err
    (event,) = [e for e in logs if e["event"].startswith("checkpoint weights this model does not use")]
    assert "decoder.bias" in event["keys"]


def test_a_run_directory_is_the_same_run_by_relative_or_absolute_path(tmp_path, tiny_corpus, plugin_manager, monkeypatch):
    from structlog.testing import capture_logs

    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    monkeypatch.chdir(tmp_path)
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run("run")
    moved = tmp_path / "moved"
    (tmp_path / "run").rename(moved)
    with capture_logs() as logs:
        load_run_config(config, plugin_manager=plugin_manager).pipeline.run(moved)
    assert sum(e["event"] == "stage already complete; reusing it" for e in logs) == 2
    assert [e["init_from"] for e in logs if e["event"] == "stage starting"] == [str(moved / "base"), str(moved / "dapt")]
