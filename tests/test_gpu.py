"""GPU checks, for sessions and machines that have one (skipped elsewhere)."""

from __future__ import annotations

import json

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import requires_gpu, tiny_pipeline_config


@requires_gpu
def test_tiny_chain_on_the_detected_gpu_profile_uses_bf16(tmp_path, tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus, hardware="auto")
    result = load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    assert result.profile.device == "cuda"
    record = json.loads((tmp_path / "dapt" / "stage.json").read_text())
    runtime = record["report"]["runtime"]
    assert runtime["device"] == "cuda" and runtime["bf16"] is True
    assert record["metrics"]["eval_loss"] > 0


@requires_gpu
def test_flash_attention_is_used_or_the_downgrade_is_recorded(tmp_path, tiny_corpus, plugin_manager):
    from sec_cybert.core.hardware import flash_attn_installed

    config = tiny_pipeline_config(tiny_corpus, hardware="cuda", finetune=False)
    config["stages"] = config["stages"][:1]
    config["stages"][0]["training"]["attn_implementation"] = "flash_attention_2"
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    runtime = json.loads((tmp_path / "dapt" / "stage.json").read_text())["report"]["runtime"]
    if flash_attn_installed():
        assert runtime["attn_implementation"] == "flash_attention_2"
    else:
        assert runtime["attn_implementation"] == "sdpa"
        assert any("flash-attn is not installed" in line for line in runtime["downgrades"])
