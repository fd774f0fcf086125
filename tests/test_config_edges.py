"""Configs at the edges: what YAML, numbers and the encoder allow that a run must not take silently."""

from __future__ import annotations

import json

import pytest
import yaml

from sec_cybert.cli import main
from sec_cybert.errors import ConfigError
from sec_cybert.host.config import load_yaml, parse_override
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import tiny_pipeline_config
from test_cli import _user_error, _write  # the CLI tests' helpers: write a config, read its errors

#: Only the built-in plugins load (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("builtins_only")


def _problems(config, plugin_manager):
    with pytest.raises(ConfigError) as caught:
        load_run_config(config, plugin_manager=plugin_manager)
    return caught.value.problems


# -- YAML ---------------------------------------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    """Nine anchors, each a list of nine aliases of the one before: 9**9 values once expanded."""
    lists = ["&l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lists += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"encoder: tiny-modernbert\nablation_seeds: [{', '.join(lists)}]\n"


def test_an_alias_bomb_under_a_valid_key_is_refused_naming_the_file(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid YAML: ") and "aliases" in message and "\n" not in message
    (line,) = _user_error(capsys, ["validate", str(path)])
    assert line == f"error: {message}"


def test_an_alias_that_holds_itself_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("encoder: tiny-modernbert\nencoder_options: &loop {inner: *loop}\n")
    with pytest.raises(ConfigError, match="refers to a value that holds it"):
        load_yaml(path)


def test_anchors_and_merge_keys_of_a_real_config_still_load(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "encoder: tiny-modernbert\n"
        "common: &common {learning_rate: 0.001, max_steps: 3}\n"
        "first: *common\n"
        "second: {<<: *common, max_steps: 5}\n"  # a merge key's value may be overridden: not a repeat
    )
    data = load_yaml(path)
    assert data["first"] == {"learning_rate": 0.001, "max_steps": 3}
    assert data["second"] == {"learning_rate": 0.001, "max_steps": 5}


def test_a_repeated_key_names_the_key_and_both_lines(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus)
    text = yaml.safe_dump(config, sort_keys=False)
    text = text.replace("    learning_rate: 0.001\n", "    learning_rate: 0.001\n    logging_steps: 1\n    learning_rate: 0.1\n", 1)
    lines = text.splitlines()
    first = lines.index("    learning_rate: 0.001") + 1
    second = lines.index("    learning_rate: 0.1") + 1
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    message = str(caught.value)
    assert f"key 'learning_rate' appears twice in one mapping (lines {first} and {second})" in message
    (line,) = _user_error(capsys, ["validate", str(path)])
    assert f"lines {first} and {second}" in line


def test_a_repeated_key_in_an_override_value_is_refused():
    with pytest.raises(ConfigError, match="key 'kind' appears twice"):
        parse_override("stages.0.masker={kind: token, kind: whole-word}")


# -- numbers ------------------------------------------------------------------------------------


def test_an_integer_beyond_64_bits_is_refused_with_the_allowed_range(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"][0]["training"]["max_steps"] = 10**30
    config["stages"][1]["max_tokens"] = 1.0e30  # a YAML float that is a whole number
    problems = _problems(config, plugin_manager)
    assert (
        "stages[0].training.max_steps: got 1000000000000000000000000000000; expected an integer from "
        "-9,223,372,036,854,775,808 to 9,223,372,036,854,775,807"
    ) in problems
    assert any(p.startswith("stages[1].max_tokens: got 1e+30; expected an integer from ") for p in problems)


def test_a_seed_numpy_cannot_take_is_refused(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus, seed=2**40, ablation_seeds=[1, -2])
    problems = _problems(config, plugin_manager)
    assert "seed: got 1099511627776; must be from 0 to 4,294,967,295 (the seeds numpy takes)" in problems
    assert "ablation_seeds: got [1, -2]; each seed must be from 0 to 4,294,967,295 (the seeds numpy takes)" in problems


# -- the encoder, where validate, plan and run can see it ----------------------------------------


def _local_encoder_config(tiny_corpus, encoder):
    config = tiny_pipeline_config(tiny_corpus, finetune=False, encoder=str(encoder))
    del config["encoder_options"]  # options are for registered encoders
    return config


def test_a_sequence_longer_than_the_encoder_takes_is_refused(tmp_path, tiny_corpus, capsys):
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 512}))
    config = _local_encoder_config(tiny_corpus, encoder)
    config["stages"][0]["chunker"]["seq_len"] = 4096
    path = _write(tmp_path, config)
    (line,) = _user_error(capsys, ["validate", str(path)])
    assert line == (
        f"error: {path}: stages[0].chunker.seq_len: got 4096; the encoder {str(encoder)!r} takes at most "
        "512 positions (max_position_embeddings in its config.json)"
    )
    lines = _user_error(capsys, ["plan", str(path), "stages.1.chunker.max_length=1024"])
    assert f"error: {path}: stages[1].chunker.max_length: got 1024; the encoder {str(encoder)!r} takes at most 512 " \
        "positions (max_position_embeddings in its config.json) (set by the override stages.1.chunker.max_length=1024)" in lines
    config["stages"][0]["chunker"]["seq_len"] = 512
    assert main(["validate", str(_write(tmp_path, config))]) == 0


def test_a_random_init_encoder_is_checked_against_the_positions_it_will_be_built_with(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["encoder_options"]["max_position_embeddings"] = 512
    config["stages"][0]["chunker"]["seq_len"] = 4096
    (line,) = _user_error(capsys, ["validate", str(_write(tmp_path, config))])
    assert line.endswith(
        "stages[0].chunker.seq_len: got 4096; the encoder 'tiny-modernbert' takes at most 512 positions "
        "(encoder_options.max_position_embeddings)"
    )
    # Without the option, the factory's default (1024) is what the model gets.
    del config["encoder_options"]["max_position_embeddings"]
    config["stages"][0]["chunker"]["seq_len"] = 2048
    (line,) = _user_error(capsys, ["validate", str(_write(tmp_path, config))])
    assert "takes at most 1024 positions (the default max_position_embeddings of the encoder)" in line


def test_a_hub_encoder_that_is_not_cached_is_not_checked_offline(tmp_path, tiny_corpus, capsys):
    config = _local_encoder_config(tiny_corpus, "sec-cybert-tests/no-such-model")
    config["stages"][0]["chunker"]["seq_len"] = 100_000
    assert main(["validate", str(_write(tmp_path, config))]) == 0


def test_validate_names_an_encoder_directory_that_does_not_exist(tmp_path, tiny_corpus, capsys):
    missing = tmp_path / "checkpoints" / "dapt"
    path = _write(tmp_path, _local_encoder_config(tiny_corpus, missing))
    (line,) = _user_error(capsys, ["validate", str(path)])
    assert line.startswith(f"error: {path}: encoder: directory {str(missing)!r} does not exist")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "dapt").write_text("not a directory")
    (line,) = _user_error(capsys, ["validate", str(path)])
    assert f"encoder: {str(missing)!r} is a file, not a checkpoint directory" in line


# -- a refused stage says what changed ---------------------------------------------------------


def test_a_refused_stage_names_the_settings_that_differ(tmp_path):
    from sec_cybert.core.context import StageContext
    from sec_cybert.host.lifecycle import STARTED_RECORD, claim_output_dir

    out = tmp_path / "dapt"
    out.mkdir()
    old = {"kind": "mlm", "masker": {"kind": "token", "probability": 0.3}, "training": {"max_steps": 3},
           "corpus": {"path": "data/" + "x" * 80}}
    new = {"kind": "mlm", "masker": {"kind": "token", "probability": 0.2}, "training": {"max_steps": 3, "seed_extra": 1},
           "corpus": {"path": "data/" + "y" * 80}}
    (out / STARTED_RECORD).write_text(json.dumps({"fingerprint": "old", "config": old, "init_from": "base", "inputs": {}}))
    context = StageContext(run_dir=tmp_path, init_from="base", hardware=None, seed=7)
    with pytest.raises(ConfigError) as caught:
        claim_output_dir(out, "new", new, context, {})
    message = str(caught.value)
    assert message.startswith(f"{out} holds a run of this stage with a different config, input or seed: ")
    assert "masker.probability: 0.3 -> 0.2" in message
    assert "training.seed_extra: (not set) -> 1" in message
    assert "corpus.path: 'data/xxxxxxxx" in message and "…" in message and "x" * 80 not in message
    assert "max_steps" not in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"config and input checkpoint are the same, so the seed, the corpus exclusions or a plugin.s version differ"):
        claim_output_dir(out, "new", old, context, {})
