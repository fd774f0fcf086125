"""The command line: one clear line per user error, never a traceback; the listing commands."""

from __future__ import annotations

import json
import os
import sys

import pytest
import structlog
import yaml

from sec_cybert.cli import main
from sec_cybert.testing import tiny_pipeline_config, write_jsonl

#: Only the built-in plugins load (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("builtins_only")


def _write(tmp_path, config, name="config.yaml"):
    path = tmp_path / name
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


# -- degenerate runs: warned about by plan and run, refused with --strict -------------------------

_ZERO_LR = (
    "tapt: 1 optimizer step, 1 warmup step (linear schedule): the learning rate is 0 at every step, so the "
    "weights never change; set warmup_ratio: 0 (now 0.05), or raise max_steps (now 1)"
)


def test_run_warns_of_a_run_whose_learning_rate_stays_zero_and_the_warning_is_true(tmp_path, tiny_corpus, capsys):
    from safetensors.torch import load_file

    config = _mlm_only(tiny_corpus)  # TAPT alone
    run = tmp_path / "run"
    assert main(["run", str(_write(tmp_path, config)), "--out", str(run), "stages.0.training.max_steps=1"]) == 0
    err = capsys.readouterr().err
    # The stage checks its own numbers as it starts (no second pass over the data) and says so.
    assert "degenerate run" in err and "the learning rate is 0 at every step" in err
    assert err.count("corpus prepared") == 1
    assert json.loads((run / "tapt" / "stage.json").read_text())["report"]["warnings"] == [_ZERO_LR]
    base, tapt = load_file(run / "base" / "model.safetensors"), load_file(run / "tapt" / "model.safetensors")
    assert base.keys() == tapt.keys() and all(base[k].equal(tapt[k]) for k in base)  # it did not learn


@pytest.mark.parametrize(
    "command",
    [["run", "{config}"], ["tapt", "--config", "{config}"], ["dapt", "--config", "{config}"], ["ablate", "{config}"], ["plan", "{config}"]],
    ids=lambda c: c[0],
)
def test_strict_refuses_a_degenerate_run_before_anything_runs(tmp_path, tiny_corpus, capsys, command):
    path = _write(tmp_path, _mlm_only(tiny_corpus))
    argv = [part.format(config=path) for part in command]
    out = [] if command[0] == "plan" else ["--out", str(tmp_path / "run")]
    lines = _user_error(capsys, [*argv, *out, "--strict", "stages.0.training.max_steps=1"])
    assert lines == [f"error: {path}: {_ZERO_LR}"]
    assert not (tmp_path / "run").exists()


def test_strict_reports_every_problem_one_line_each(tmp_path, tiny_corpus, capsys):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][2:]  # the fine-tune alone; its train file holds 56 examples
    path = _write(tmp_path, config)
    argv = ["finetune", "--config", str(path), "--out", str(tmp_path / "run"), "--strict"]
    lines = _user_error(capsys, [*argv, "stages.0.training.per_device_train_batch_size=64"])
    assert lines == [
        f"error: {path}: finetune: 1 optimizer step, 1 warmup step (linear schedule): the learning rate is 0 at "
        "every step, so the weights never change; set warmup_ratio: 0 (now 0.05), or raise num_train_epochs "
        "(now 1) or lower the batch for more steps per epoch",
        f"error: {path}: finetune: 56 training sequences, fewer than one effective batch of 64 (64 per device x "
        "1 accumulation x 1 process): every optimizer step sees the whole training set, a smaller batch than "
        "configured; add data, or lower per_device_train_batch_size x gradient_accumulation_steps to at most 56",
    ]
    assert not (tmp_path / "run").exists()


def test_plan_prints_the_warnings_in_text_and_json(tmp_path, tiny_corpus, capsys):
    path = _write(tmp_path, _mlm_only(tiny_corpus))
    assert main(["-q", "plan", str(path), "stages.0.training.max_steps=1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"warning: {_ZERO_LR}"
    assert main(["-q", "plan", str(path), "--json", "stages.0.training.max_steps=1"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == [_ZERO_LR]
    assert main(["-q", "plan", str(path), "--strict"]) == 0  # healthy: nothing to refuse
    assert "warning:" not in capsys.readouterr().out


def test_a_plan_that_cannot_be_made_warns_and_strict_refuses(tmp_path, tiny_corpus, capsys, monkeypatch):
    import sec_cybert.host.planner

    def broken(*args, **kwargs):
        raise RuntimeError("a plugin stage's plan is broken")

    monkeypatch.setattr(sec_cybert.host.planner, "plan_pipeline", broken)
    path = _write(tmp_path, _mlm_only(tiny_corpus))
    (line,) = _user_error(capsys, ["run", str(path), "--out", str(tmp_path / "run"), "--strict"])
    assert line == "error: --strict: could not plan the run to check it: RuntimeError: a plugin stage's plan is broken"
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 0  # without --strict nothing is planned ahead
    assert (tmp_path / "run" / "tapt" / "stage.json").is_file()


def test_quiet_turns_the_progress_bar_off_and_a_terminal_turns_it_on(monkeypatch):
    from sec_cybert.cli import configure_logging
    from sec_cybert.stages.callbacks import PROGRESS_ENV, progress_bar_wanted

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_bar_wanted()
    configure_logging(-1, "console")
    assert os.environ[PROGRESS_ENV] == "off" and not progress_bar_wanted()
    monkeypatch.setenv(PROGRESS_ENV, "on")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar_wanted()


def test_report_command_writes_the_page(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "has no lineage.json" in capsys.readouterr().err


def test_a_run_shows_a_progress_bar_on_a_terminal_and_step_lines_elsewhere(tmp_path, tiny_corpus, capfd, monkeypatch):
    path = _write(tmp_path, _mlm_only(tiny_corpus))
    monkeypatch.setenv("SEC_CYBERT_PROGRESS", "on")
    assert main(["run", str(path), "--out", str(tmp_path / "bar")]) == 0
    err = capfd.readouterr().err
    assert "tapt (base)" in err and "3/3" in err  # the tqdm bar: stage, variant, step/total
    assert "training " in err and "steps=3" in err
    monkeypatch.setenv("SEC_CYBERT_PROGRESS", "off")
    assert main(["run", str(path), "--out", str(tmp_path / "lines")]) == 0
    err = capfd.readouterr().err
    assert "step=1/3" in err and "eta=" in err and "3/3 [" not in err


def test_push_and_export_head_are_commands(tmp_path, capsys, monkeypatch):
    import sec_cybert.sharing.hub

    calls = []
    monkeypatch.setattr(sec_cybert.sharing.hub, "push_to_hub", lambda d, repo, private: calls.append((d, repo, private)) or "https://hf.co/x/commit/1")
    assert main(["push", str(tmp_path), "--repo", "org/name"]) == 0
    assert calls == [(tmp_path, "org/name", True)] and "pushed: https://hf.co/x/commit/1" in capsys.readouterr().out
    assert main(["export-head", str(tmp_path / "nothing"), "--head", "category", "--out", str(tmp_path / "e")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_log_lines_of_a_multi_process_run_name_their_rank(monkeypatch, capsys):
    from sec_cybert.cli import configure_logging

    log = structlog.get_logger("rank-test")
    configure_logging(0, "json")
    try:
        monkeypatch.setenv("WORLD_SIZE", "1")
        log.info("single")
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "1")
        log.info("second rank")
    finally:
        structlog.reset_defaults()
    single, second = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    assert "rank" not in single and second["rank"] == 1 and second["event"] == "second rank"


# -- one way to name the config, each problem said once, quiet library bars -------------------------


@pytest.mark.parametrize("command", ["run", "dapt", "tapt", "finetune", "ablate", "plan", "validate"])
def test_every_config_command_takes_config_as_argument_and_as_option(tmp_path, tiny_corpus, capsys, command):
    path = _write(tmp_path, tiny_pipeline_config(tiny_corpus))
    other = _write(tmp_path, tiny_pipeline_config(tiny_corpus), name="other.yaml")
    for argv in ([command, str(path)], [command, "--config", str(path)]):
        # A bad override stops every command once it has read the config: proof it was found.
        lines = _user_error(capsys, [*argv, "seed=[1]"])
        assert lines == [f"error: {path}: seed: got [1]; expected an integer (set by the override seed=[1])"], (argv, lines)
    lines = _user_error(capsys, [command, "--config", str(path), str(path), "seed=[1]"])  # the same file twice: fine
    assert lines == [f"error: {path}: seed: got [1]; expected an integer (set by the override seed=[1])"]
    assert main([command, str(other), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"two configs, {other} and --config {path}: give the config once" in err and "Traceback" not in err
    assert main([command, "--config", str(path), "typo.yaml"]) == 2  # a .yaml is a config, found or not
    assert f"two configs, typo.yaml and --config {path}" in capsys.readouterr().err


def test_plan_strict_says_each_problem_once(tmp_path, tiny_corpus, capsys):
    path = _write(tmp_path, _mlm_only(tiny_corpus))
    assert main(["-q", "plan", str(path), "--strict", "stages.0.training.max_steps=1"]) == 2
    captured = capsys.readouterr()
    said = (captured.out + captured.err).count("the learning rate is 0 at every step")
    assert said == 1 and captured.err.splitlines()[-1] == f"error: {path}: {_ZERO_LR}"
    assert "[tapt] (mlm)" in captured.out  # the plan itself is still shown


def test_library_progress_bars_need_verbose_on_a_terminal_too(monkeypatch):
    import datasets  # noqa: F401 - its bars module, datasets.utils.tqdm, is shadowed by the class

    from sec_cybert.cli import configure_logging

    dataset_bars = sys.modules["datasets.utils.tqdm"]

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    for verbosity, disabled in ((0, True), (1, False)):
        monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "unset")  # restored after the test
        monkeypatch.delenv("HF_DATASETS_DISABLE_PROGRESS_BARS")
        monkeypatch.setattr(dataset_bars, "_hf_datasets_progress_bars_disabled", False)
        configure_logging(verbosity, "console")
        assert dataset_bars.are_progress_bars_disabled() is disabled, verbosity


def test_each_evaluation_of_an_mlm_stage_is_one_line(tmp_path, tiny_corpus, capsys, monkeypatch):
    monkeypatch.setenv("SEC_CYBERT_PROGRESS", "off")
    path = _write(tmp_path, _mlm_only(tiny_corpus))  # 3 steps, evaluated at its save points, 2 and 3
    assert main(["--log-format", "json", "run", str(path), "--out", str(tmp_path / "run")]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    evaluations = [e for e in events if e["event"] == "train" and "eval_loss" in e]
    assert [e["step"] for e in evaluations] == ["2/3", "3/3"]
    recorded = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())["metrics"]["eval_loss"]
    assert recorded == pytest.approx(evaluations[-1]["eval_loss"])  # the final metric is that evaluation


def test_every_option_of_every_command_says_what_it_does():
    import click

    from sec_cybert.cli import _add_plugin_commands, cli

    _add_plugin_commands()  # the corpus group comes in through the plugin hook

    def silent(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from silent(sub, f"{path} {name}")
            return
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                yield f"{path} {param.opts[0]}"

    assert list(silent(cli, "sec-cybert")) == []


def test_the_docs_index_lists_every_command():
    from pathlib import Path

    from sec_cybert.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    index = (Path(__file__).resolve().parents[1] / "docs" / "index.md").read_text(encoding="utf-8")
    listed = index.split("## The command line", 1)[1]
    missing = [name for name in cli.commands if f"sec-cybert {name}" not in listed and f"/ {name}" not in listed]
    assert missing == []
