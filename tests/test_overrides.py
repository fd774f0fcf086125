"""KEY.PATH=VALUE overrides on every command that takes a config: applied to the file's mapping
before validation, so an override is checked exactly like the file."""

from __future__ import annotations

import json

import pytest

from sec_cybert.cli import main
from sec_cybert.errors import ConfigError
from sec_cybert.host.config import apply_overrides, parse_override
from sec_cybert.testing import tiny_pipeline_config
from test_cli import _user_error, _write  # the CLI tests' helpers: write a config, read its errors

#: Only the built-in plugins load (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("builtins_only")


def _tapt_only(tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]
    return config


# -- apply_overrides ----------------------------------------------------------------------------


def test_values_are_yaml_and_list_items_are_numbered(tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus)
    result = apply_overrides(
        config,
        [
            "stages.0.training.max_steps=5",
            "seed=3",
            "stages.1.masker.probability=0.15",
            "stages[2].training.bf16=true",
            "output_dir=null",
            "ablation_seeds=[1,2]",
            "stages.0.masker={kind: token, probability: 0.2}",
            "tracking=none",
            "stages.0.training.learning_rate=5e-5",
        ],
    )
    assert result["stages"][0]["training"]["max_steps"] == 5
    assert result["seed"] == 3
    assert result["stages"][1]["masker"] == {"kind": "whole-word", "probability": 0.15}
    assert result["stages"][2]["training"]["bf16"] is True
    assert result["output_dir"] is None and result["ablation_seeds"] == [1, 2]
    assert result["stages"][0]["masker"] == {"kind": "token", "probability": 0.2}
    assert result["tracking"] == "none"
    assert result["stages"][0]["training"]["learning_rate"] == "5e-5"  # YAML 1.1; the loader reads it as 5e-5
    assert config["seed"] == 7 and config["stages"][0]["training"]["max_steps"] == 3  # the input is not changed


def test_later_overrides_win_and_new_keys_are_added(tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus)
    result = apply_overrides(config, ["seed=1", "seed=2", "contamination.threshold=0.9", "stages.0.training.lr=1"])
    assert result["seed"] == 2
    assert result["contamination"] == {"threshold": 0.9}  # a mapping the file lacks is created
    assert result["stages"][0]["training"]["lr"] == 1  # the loader reports it as unknown


def test_bad_arguments_are_one_line_each_naming_the_argument(tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus)
    with pytest.raises(ConfigError) as caught:
        apply_overrides(
            config,
            [
                "stages.0.training.max_steps",
                "stages.3.training.max_steps=2",
                "seed.value=1",
                "stages.dapt.name=x",
                "ablation_seeds.0=1",
                "=4",
                "seed=[1",
            ],
        )
    assert caught.value.problems == [
        "override 'stages.0.training.max_steps': expected KEY.PATH=VALUE (e.g. stages.0.training.max_steps=5 or seed=3)",
        "override 'stages.3.training.max_steps=2': index 3 is out of range: stages holds 3 items (0 to 2)",
        "override 'seed.value=1': seed is 7, not a mapping or a list, so it has no key 'value'",
        "override 'stages.dapt.name=x': stages is a list; index it with a number (0 to 2), not 'dapt'",
        "override 'ablation_seeds.0=1': ablation_seeds is not in the config, so it has no item 0; "
        "give the whole list, e.g. ablation_seeds=[...]",
        "override '=4': '' is not a key path (e.g. stages.0.training.max_steps=5 or seed=3)",
        "override 'seed=[1': the value is not valid YAML (expected ',' or ']', but got '<stream end>'); "
        "e.g. ablation_seeds=[1,2] or 'stages.1.masker={kind: token, probability: 0.15}'",
    ]
    assert all("\n" not in problem for problem in caught.value.problems)


def test_key_path_is_spelled_as_the_loader_spells_it():
    assert parse_override("stages.0.training.max_steps=2").key_path == "stages[0].training.max_steps"
    assert parse_override("stages[1].heads[0].labels=[a, b]").keys == ("stages", 1, "heads", 0, "labels")


# -- the command line -----------------------------------------------------------------------------

COMMANDS = [
    ["run", "{config}", "--out", "{out}"],
    ["dapt", "--config", "{config}", "--out", "{out}"],
    ["tapt", "--config", "{config}", "--out", "{out}"],
    ["finetune", "--config", "{config}", "--out", "{out}"],
    ["ablate", "{config}", "--out", "{out}"],
    ["validate", "{config}"],
    ["plan", "{config}"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_takes_overrides_and_validates_them_like_the_file(tmp_path, tiny_corpus, capsys, command):
    path = _write(tmp_path, tiny_pipeline_config(tiny_corpus))
    argv = [part.format(config=path, out=tmp_path / "run") for part in command]
    lines = _user_error(capsys, [*argv, "seed=oops", "stages.1.training.max_steps=0"])
    assert lines == [
        f"error: {path}: seed: got 'oops'; expected an integer (set by the override seed=oops)",
        f"error: {path}: stages[1].training.max_steps: got 0; must be >= 1 "
        "(set by the override stages.1.training.max_steps=0)",
    ]
    (line,) = _user_error(capsys, [*argv, "stages.0.training.max_steps"])
    assert line == (
        "error: override 'stages.0.training.max_steps': expected KEY.PATH=VALUE "
        "(e.g. stages.0.training.max_steps=5 or seed=3)"
    )
    assert not (tmp_path / "run").exists()


def test_an_unknown_key_from_an_override_is_reported_with_a_suggestion(tmp_path, tiny_corpus, capsys):
    path = _write(tmp_path, tiny_pipeline_config(tiny_corpus))
    (line,) = _user_error(capsys, ["validate", str(path), "stages.0.training.lr=0.1"])
    assert line.startswith(f"error: {path}: stages[0].training.lr: unknown key; did you mean 'learning_rate'?")
    assert line.endswith("(set by the override stages.0.training.lr=0.1)")


def test_validate_names_the_overrides_it_checked(tmp_path, tiny_corpus, capsys):
    path = _write(tmp_path, tiny_pipeline_config(tiny_corpus))
    assert main(["validate", str(path), "seed=3", "stages.1.masker.probability=0.15", "tracking=none"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{path}: valid with seed=3 stages.1.masker.probability=0.15 tracking=none; "
        "stages: dapt (mlm), tapt (mlm), finetune (finetune)"
    )


def test_an_override_changes_what_plan_reports(tmp_path, tiny_corpus, capsys):
    path = _write(tmp_path, tiny_pipeline_config(tiny_corpus))
    assert main(["-q", "plan", str(path), "--json", "stages.0.training.max_steps=7", "stages[1].training.max_steps=9"]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [s["optimizer_steps"] for s in stages[:2]] == [7, 9]


def test_an_override_changes_what_runs(tmp_path, tiny_corpus, capsys):
    path = _write(tmp_path, _tapt_only(tiny_corpus))  # max_steps: 3 in the file
    run = tmp_path / "run"
    assert main(["-q", "tapt", "--config", str(path), "--out", str(run), "stages.0.training.max_steps=2"]) == 0
    assert "degenerate run" not in capsys.readouterr().err  # a healthy run: nothing to warn about
    record = json.loads((run / "tapt" / "stage.json").read_text())
    assert record["metrics"]["global_step"] == 2
    assert record["config"]["training"]["max_steps"] == 2
    assert json.loads((run / "lineage.json").read_text())["overrides"] == ["stages.0.training.max_steps=2"]


def test_the_loader_accepts_the_recorded_overrides(tiny_corpus, plugin_manager):
    from sec_cybert.host.pipeline import load_run_config

    config = tiny_pipeline_config(tiny_corpus, overrides=["seed=3"])
    load_run_config(config, plugin_manager=plugin_manager)
    with pytest.raises(ConfigError, match="overrides: got 'seed=3'; expected a list of a string or null"):
        load_run_config({**config, "overrides": "seed=3"}, plugin_manager=plugin_manager)
