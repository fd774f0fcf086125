"""The command line: one clear line per user error, never a traceback; the listing commands."""

from __future__ import annotations

import json

import pytest
import yaml

from sec_cybert.cli import main
from sec_cybert.testing import tiny_pipeline_config, write_jsonl


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch):
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    from sec_cybert.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()


def _write(tmp_path, config):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _user_error(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    return [line for line in captured.err.splitlines() if line.startswith("error: ")]


def test_plugins_lists_components_with_their_plugin(capsys):
    assert main(["plugins", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {(c["kind"], c["name"]): c["plugin"] for c in payload["components"]}
    assert rows[("masker", "whole-word")] == "builtin-maskers"
    assert rows[("hardware", "rtx3090")] == "builtin-hardware"
    from importlib.metadata import version

    assert {"name": "builtin-runner", "distribution": "sec-cybert", "version": version("sec-cybert"), "hooks": ["stage_run"]} in payload["plugins"]
    assert rows[("tracker", "wandb")] == "builtin-wandb"
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "whole-word" in out and f"sec-cybert {version('sec-cybert')}" in out


def test_validate_reports_every_problem_with_its_key_path(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"][0]["training"]["learning_rate"] = "fast"
    config["stages"][1]["masker"]["kind"] = "wholeword"
    config["extra"] = 1
    lines = _user_error(capsys, ["validate", str(_write(tmp_path, config))])
    assert len(lines) == 3
    assert any("stages[0].training.learning_rate: got 'fast'; expected a number" in line for line in lines)
    assert any("stages[1].masker.kind: unknown masker 'wholeword' (did you mean 'whole-word'?)" in line for line in lines)
    assert any("extra: unknown key" in line for line in lines)


def test_validate_accepts_a_good_config(tmp_path, tiny_corpus, capsys):
    assert main(["validate", str(_write(tmp_path, tiny_pipeline_config(tiny_corpus)))]) == 0
    assert "valid; stages: dapt (mlm), tapt (mlm), finetune (finetune)" in capsys.readouterr().out


def _mlm_only(tiny_corpus, **corpus):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]  # the TAPT stage, on paragraphs
    config["stages"][0]["corpus"].update(corpus)
    return config


def test_missing_corpus_path(tmp_path, tiny_corpus, capsys):
    config = _mlm_only(tiny_corpus, path=str(tmp_path / "absent.jsonl"))
    (line,) = _user_error(capsys, ["run", str(_write(tmp_path, config)), "--out", str(tmp_path / "run")])
    assert "stages[0].corpus.path" in line and "absent.jsonl' does not exist" in line


def test_empty_corpus(tmp_path, tiny_corpus, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    config = _mlm_only(tiny_corpus, path=str(empty))
    (line,) = _user_error(capsys, ["tapt", "--config", str(_write(tmp_path, config)), "--out", str(tmp_path / "run")])
    assert "yielded no documents" in line


def test_malformed_jsonl_line(tmp_path, tiny_corpus, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a fine paragraph about the audit committee"}\n{"text": \n')
    config = _mlm_only(tiny_corpus, path=str(broken))
    (line,) = _user_error(capsys, ["run", str(_write(tmp_path, config)), "--out", str(tmp_path / "run")])
    assert "broken.jsonl:2: malformed JSON" in line


def test_label_not_in_the_label_set(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][2:]
    labels = write_jsonl(tmp_path / "labels.jsonl", [{"text": "The CISO reports.", "category": "Weather", "specificity": "Firm-Specific"}])
    config["stages"][0]["train_file"] = str(labels)
    (line,) = _user_error(capsys, ["finetune", "--config", str(_write(tmp_path, config)), "--out", str(tmp_path / "run")])
    assert "category 'Weather' is not in the label set" in line


def test_wrong_type_and_unknown_hardware(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus)
    config["seed"] = [1]
    lines = _user_error(capsys, ["run", str(_write(tmp_path, config)), "--hardware", "tpu", "--out", str(tmp_path)])
    assert any("seed: got [1]; expected an integer" in line for line in lines)
    assert any("hardware: unknown hardware profile 'tpu'" in line for line in lines)


def test_missing_config_file_and_missing_output_dir(tmp_path, tiny_corpus, capsys):
    (line,) = _user_error(capsys, ["run", str(tmp_path / "none.yaml")])
    assert "does not exist" in line
    (line,) = _user_error(capsys, ["run", str(_write(tmp_path, tiny_pipeline_config(tiny_corpus)))])
    assert "pass --out DIR or set output_dir" in line


def test_stage_command_checks_the_stage_kind(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    (line,) = _user_error(capsys, ["finetune", "--config", str(_write(tmp_path, config)), "--out", str(tmp_path)])
    assert "has no fine-tune stage" in line


def test_shipped_configs_resolve_by_their_repository_path(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: the packaged copy must be found
    lines = _user_error(capsys, ["validate", "configs/dapt/modernbert.yaml"])
    (line,) = lines
    assert line.startswith("error: ") and "configs/dapt/modernbert.yaml: " in line
    assert line.endswith("stages[0].corpus.path: path 'data/dapt-corpus' does not exist; check the path (relative paths start from the working directory)")


def test_interrupt_is_one_line_that_says_how_to_resume(monkeypatch, capsys):
    from sec_cybert import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.cli, "main", interrupted)
    assert main(["plugins"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted; run the same command again to resume from the last checkpoint"


def test_binary_config_and_encoder_option_typo_are_one_line_each(tmp_path, tiny_corpus, capsys):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b'\x48\x00\x00\x00\x00\x00\x00\x00{"__metadata__": {"format": "pt"}}' + bytes(64))
    (line,) = _user_error(capsys, ["validate", str(weights)])
    assert line == (
        f"error: {weights}: a binary file (it holds NUL bytes), not a YAML config: "
        "give the pipeline's .yaml file, not a model or data file"
    )
    config = tiny_pipeline_config(tiny_corpus)
    config["encoder_options"]["hiden_size"] = 64
    path = _write(tmp_path, config)
    (line,) = _user_error(capsys, ["run", str(path), "--out", str(tmp_path / "run")])
    assert line.startswith(f"error: {path}: encoder_options.hiden_size: unknown option of encoder 'tiny-modernbert'; did you mean 'hidden_size'?")
    assert not (tmp_path / "run").exists()  # refused before anything ran
