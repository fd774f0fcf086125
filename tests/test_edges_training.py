"""Edges of training: what an encoder directory is, maskers that give no or impossible targets,
a full disk in a wrapped form, SIGTERM before training starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sec_cybert.errors import DataError
from sec_cybert.pipeline import load_run_config
from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus


def _tapt(tmp_path: Path, **training) -> dict:
    config = tiny_pipeline_config(write_tiny_corpus(tmp_path / "corpus"), finetune=False)
    config["stages"] = [config["stages"][1]]
    config["stages"][0]["training"].update({"max_steps": 1, "save_strategy": "no", **training})
    return config


def _from_encoder(config: dict, encoder: Path, name: str = "tapt2") -> dict:
    """The same stage under another name, started from ``encoder`` (a directory)."""
    config = json.loads(json.dumps(config))
    config.update(encoder=str(encoder))
    config.pop("encoder_options", None)
    config["stages"][0]["name"] = name
    return config


@pytest.fixture(scope="module")
def finished_tapt(tmp_path_factory, plugin_manager):
    """A finished one-step TAPT stage: a directory holding weights, a tokenizer and a stage.json."""
    tmp_path = tmp_path_factory.mktemp("finished")
    config = _tapt(tmp_path)
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    return config, tmp_path / "run" / "tapt"


# --- the encoder directory is the directory read ----------------------------------------------


def test_an_encoder_directory_with_a_stage_record_is_read_from_where_it_is_now(finished_tapt, tmp_path, plugin_manager):
    from safetensors.torch import load_file, save_file

    config, tapt = finished_tapt
    # Moved: the stage.json inside still names the old place, which is gone.
    moved = tmp_path / "moved"
    shutil.copytree(tapt, moved)
    result = load_run_config(_from_encoder(config, moved), plugin_manager=plugin_manager).pipeline.run(tmp_path / "run-moved")
    assert result.variants[-2].checkpoint == str(moved)  # the +TAPT variant is the directory named
    assert json.loads((tmp_path / "run-moved" / "tapt2" / "stage.json").read_text())["init_from"] == str(moved)
    # Edited: an all-inf copy must be what is read (and refused), not the original it came from.
    edited = tmp_path / "edited"
    shutil.copytree(tapt, edited)
    weights = load_file(edited / "model.safetensors")
    save_file({k: torch.full_like(v, float("inf")) for k, v in weights.items()}, edited / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(DataError, match=r"edited \(init_from\) has non-finite weights"):
        load_run_config(_from_encoder(config, edited), plugin_manager=plugin_manager).pipeline.run(tmp_path / "run-edited")


def test_a_corrupt_tokenizer_json_in_the_encoder_directory_is_one_line_naming_it(finished_tapt, tmp_path, plugin_manager):
    config, tapt = finished_tapt
    copy = tmp_path / "copy"
    shutil.copytree(tapt, copy)
    text = (copy / "tokenizer.json").read_text()
    (copy / "tokenizer.json").write_text(text[: len(text) // 2])
    pipeline = load_run_config(_from_encoder(config, copy), plugin_manager=plugin_manager).pipeline
    with pytest.raises(DataError, match=r"copy/tokenizer.json is not a readable tokenizer file \(JSONDecodeError: .*cut short or edited"):
        pipeline.run(tmp_path / "run")
