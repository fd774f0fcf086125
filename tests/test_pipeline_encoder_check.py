"""A pipeline built in Python gets the encoder checks the CLI runs on load, before anything is
written or trained: a sequence length past the encoder's positions, an encoder directory that
is not there."""

from __future__ import annotations

import json

import pytest

from sec_cybert.errors import ConfigError
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import tiny_pipeline_config


def _pipeline(config, plugin_manager):
    return load_run_config(config, plugin_manager=plugin_manager).pipeline


def test_a_sequence_past_the_built_encoders_positions_is_refused_before_the_run_starts(
    tmp_path, tiny_corpus, plugin_manager
):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["encoder_options"]["max_position_embeddings"] = 64
    config["stages"][0]["chunker"]["seq_len"] = 128
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"stages\[0\]\.chunker\.seq_len: got 128; the encoder 'tiny-modernbert' takes at most 64 positions"):
        _pipeline(config, plugin_manager).run(run_dir)
    assert not run_dir.exists()  # refused before the run directory, the base encoder or a tokenizer


def test_a_local_encoders_positions_are_read_from_its_config(tmp_path, tiny_corpus, plugin_manager):
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "modernbert", "max_position_embeddings": 32}))
    config = tiny_pipeline_config(tiny_corpus, finetune=False, encoder=str(encoder))
    del config["encoder_options"]
    with pytest.raises(ConfigError, match=r"takes at most 32 positions \(max_position_embeddings in its config\.json\)"):
        _pipeline(config, plugin_manager).ablation(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_encoder_directory_that_is_not_there_is_named(tmp_path, tiny_corpus, plugin_manager):
    missing = tmp_path / "checkpoints" / "dapt"
    config = tiny_pipeline_config(tiny_corpus, finetune=False, encoder=str(missing))
    del config["encoder_options"]
    with pytest.raises(ConfigError, match=rf"encoder: directory '{missing}' does not exist"):
        _pipeline(config, plugin_manager).run(tmp_path / "run")
    assert not (tmp_path / "run").exists()
