"""Nothing lost: exact resume after a kill, checkpoints that survive one, training that stops on bad numbers.

A tiny MLM stage (fp32, CPU) is run in a process of its own that kills itself with ``os._exit`` at a
chosen step (or inside a checkpoint save, or with SIGTERM); the same command is then run again
and must end with bit-identical weights and the same logged losses as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

from sec_cybert.stages.checkpointing import verify

RUNNER = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    import torch, transformers
    from sec_cybert import hookimpl
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config, write_tiny_corpus

    root, run, mode, at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    config = tiny_pipeline_config(write_tiny_corpus(root / "corpus"), finetune=False)
    config["stages"] = [config["stages"][1]]  # TAPT: 28 paragraphs, 7 steps an epoch at batch 4
    config["stages"][0]["training"] = {
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "max_steps": 10,
        "learning_rate": 1e-3, "logging_steps": 1, "save_strategy": "steps", "save_steps": 2,
        "save_total_limit": 2,
    }

    class Die(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if mode == "sigterm" and state.global_step + 1 == at:  # the notice arrives during step <at>
                os.kill(os.getpid(), signal.SIGTERM)

        def on_step_end(self, args, state, control, **kwargs):
            if mode == "kill" and state.global_step == at:
                os._exit(137)

        def on_save(self, args, state, control, **kwargs):  # after the manifest: checkpoint-<at> is complete
            if mode == "kill-after-save" and state.global_step == at:
                os._exit(137)

    if mode == "kill-in-save":  # die while checkpoint-<at> is half written: weights there, optimizer not
        save = torch.save
        def dying_save(obj, f, *args, **kwargs):
            if str(f).endswith(f"checkpoint-{at}/optimizer.pt"):
                os._exit(137)
            return save(obj, f, *args, **kwargs)
        torch.save = dying_save

    class Losses:  # appended as they come: a killed process keeps what it logged
        @hookimpl
        def on_train_event(self, event, step, metrics):
            if event == "log" and "loss" in metrics:
                with (run / "losses.jsonl").open("a") as handle:
                    handle.write(json.dumps([step, metrics["loss"]]) + "\\n")

    init = transformers.Trainer.__init__
    def with_die(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(Die())
    transformers.Trainer.__init__ = with_die
    pm = builtin_plugin_manager()
    pm.register(Losses(), name="losses")
    run.mkdir(parents=True, exist_ok=True)
    load_run_config(config, plugin_manager=pm).pipeline.run(run)
    """
)


def _run(python, tmp_path, run, mode="none", at=0, check=True):
    """The runner in a process of its own (``preloaded_python``: forked, the libraries imported)."""
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = python.run([script, tmp_path / "data", run, mode, at], env=env, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def _losses(run):
    """Loss by step, the last logged value of each (a step redone after a resume overwrites)."""
    return {step: loss for step, loss in map(json.loads, (run / "losses.jsonl").read_text().splitlines())}


def _weights(run):
    return load_file(run / "tapt" / "model.safetensors")


def _same(a, b):
    return all((a[k] == b[k]).all() for k in a) and a.keys() == b.keys()


def _record(run):
    return json.loads((run / "tapt" / "stage.json").read_text())


def _training_log(run):
    """(event, step, loss) of every entry of the stage's training log, in order."""
    lines = (run / "tapt" / "training-log.jsonl").read_text().splitlines()
    return [(e["event"], e["step"], e.get("loss"), e.get("train_loss")) for e in map(json.loads, lines)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, preloaded_python):
    tmp_path = tmp_path_factory.mktemp("reference")
    _run(preloaded_python, tmp_path, tmp_path / "run")
    return tmp_path, _weights(tmp_path / "run"), _losses(tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "at"), [("kill", 3), ("kill", 8), ("kill-in-save", 4)], ids=["mid-epoch", "second-epoch", "during-a-save"])
def test_a_killed_stage_resumes_to_bit_identical_weights_and_losses(reference, preloaded_python, tmp_path, mode, at):
    ref_dir, ref_weights, ref_losses = reference
    shutil.copytree(ref_dir / "data", tmp_path / "data")
    run = tmp_path / "run"
    killed = _run(preloaded_python, tmp_path, run, mode, at, check=False)
    assert killed.returncode == 137
    assert not (run / "tapt" / "stage.json").exists()
    resumed = _run(preloaded_python, tmp_path, run)
    assert _same(_weights(run), ref_weights)
    assert _losses(run) == ref_losses  # every logged loss, before and after the resume point
    # The training log holds each step once, and train_loss covers the steps before the resume too.
    assert _training_log(run) == _training_log(ref_dir / "run")
    assert _record(run)["metrics"] == _record(ref_dir / "run")["metrics"]
    if mode == "kill-in-save":
        # The half-written checkpoint was set aside, reported, and the one before used.
        assert "checkpoint-4: the manifest" in resumed.stdout or "checkpoint-4: no manifest" in resumed.stdout
        assert (run / "tapt" / "checkpoints" / "unverified" / "checkpoint-4").is_dir()
        assert "checkpoint-2" in resumed.stdout
        record = json.loads((run / "tapt" / "stage.json").read_text())["report"]
        assert record["checkpoints_skipped"] == ["checkpoint-4: no manifest (the save did not finish)"]


@pytest.mark.slow
def test_a_stage_killed_right_after_its_last_checkpoint_finishes_without_training(reference, preloaded_python, tmp_path):
    ref_dir, ref_weights, ref_losses = reference
    shutil.copytree(ref_dir / "data", tmp_path / "data")
    run = tmp_path / "run"
    killed = _run(preloaded_python, tmp_path, run, "kill-after-save", 10, check=False)
    assert killed.returncode == 137 and verify(run / "tapt" / "checkpoints" / "checkpoint-10") is None
    assert not (run / "tapt" / "stage.json").exists()
    resumed = _run(preloaded_python, tmp_path, run)
    assert "nothing left to train" in resumed.stdout
    assert not (run / "tapt" / "checkpoints" / "checkpoint-11").exists()
    assert _same(_weights(run), ref_weights) and _losses(run) == ref_losses
    assert _record(run)["metrics"] == _record(ref_dir / "run")["metrics"]  # global_step 10, train_loss, eval_loss
    assert _training_log(run) == _training_log(ref_dir / "run")  # no step trained twice


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(reference, preloaded_python, tmp_path):
    ref_dir, ref_weights, _ = reference
    shutil.copytree(ref_dir / "data", tmp_path / "data")
    run = tmp_path / "run"
    stopped = _run(preloaded_python, tmp_path, run, "sigterm", 3, check=False)
    assert stopped.returncode != 0 and "Preempted: stopped by SIGTERM after step 3" in stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    assert verify(run / "tapt" / "checkpoints" / "checkpoint-3") is None  # saved at the step it stopped
    _run(preloaded_python, tmp_path, run)
    assert _same(_weights(run), ref_weights)
    # Resumed at step 3, not trained again from the start (which would end with the same weights);
    # the stopped attempt's train_loss summary gave way to the stage's. Its extra checkpoint stays.
    logged = _training_log(run)
    assert ("checkpoint", 3, None, None) in logged
    assert [e for e in logged if e != ("checkpoint", 3, None, None)] == _training_log(ref_dir / "run")


def test_the_cli_reports_preemption_as_one_line_with_status_143(monkeypatch, capsys):
    from sec_cybert import cli
    from sec_cybert.errors import Preempted

    def preempted(*args, **kwargs):
        raise Preempted("stopped by SIGTERM after step 3 of tapt, with a checkpoint (x); run the same command again to resume")

    monkeypatch.setattr(cli, "_run", preempted)
    assert cli.main(["run", "whatever.yaml"]) == 143
    assert capsys.readouterr().err.strip().startswith("stopped: stopped by SIGTERM after step 3")


# --- torn checkpoints, one file at a time -----------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(reference):
    """A complete checkpoint, written by the real Trainer with its manifest: the last of the
    reference run (the tests copy it before they damage it)."""
    path = reference[0] / "run" / "tapt" / "checkpoints" / "checkpoint-10"
    assert verify(path) is None
    return path


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("delete trainer_state.json", "trainer_state.json is missing"),
        ("delete optimizer.pt", "optimizer.pt is missing"),
        ("delete scheduler.pt", "scheduler.pt is missing"),
        ("delete rng_state.pth", "rng_state.pth is missing"),
        ("truncate model.safetensors", "model.safetensors has"),
        ("truncate trainer_state.json", "trainer_state.json has"),
        ("flip optimizer.pt", "optimizer.pt does not match its digest"),
        ("delete manifest.json", "no manifest"),
        ("truncate manifest.json", "unreadable manifest"),
        ("empty", "no manifest"),
    ],
)
def test_every_torn_checkpoint_is_detected(checkpoint, tmp_path, damage, expected):
    torn = tmp_path / "checkpoint-10"
    shutil.copytree(checkpoint, torn)
    action, _, name = damage.partition(" ")
    if action == "delete":
        (torn / name).unlink()
    elif action == "truncate":
        data = (torn / name).read_bytes()
        (torn / name).write_bytes(data[: len(data) // 2])
    elif action == "flip":
        data = bytearray((torn / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (torn / name).write_bytes(bytes(data))
    else:
        shutil.rmtree(torn)
        torn.mkdir()
    problem = verify(torn)
    assert problem is not None and problem.startswith(expected), problem


def test_a_torn_newest_checkpoint_is_set_aside_and_the_previous_one_used(checkpoint, tmp_path):
    from sec_cybert.stages.checkpointing import last_verified_checkpoint

    directory = tmp_path / "checkpoints"
    shutil.copytree(checkpoint, directory / "checkpoint-8")
    shutil.copytree(checkpoint, directory / "checkpoint-10")
    (directory / "checkpoint-10" / "optimizer.pt").unlink()
    last, skipped = last_verified_checkpoint(directory)
    assert last == directory / "checkpoint-8"
    assert skipped == ["checkpoint-10: optimizer.pt is missing"]
    assert (directory / "unverified" / "checkpoint-10" / "model.safetensors").is_file()  # moved, not deleted


def test_a_full_disk_is_one_clear_line_and_keeps_earlier_checkpoints(reference, tmp_path, plugin_manager, monkeypatch):
    import errno

    import torch

    from sec_cybert.errors import DataError
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    config = tiny_pipeline_config(write_tiny_corpus(tmp_path / "corpus"), finetune=False)
    config["stages"] = [config["stages"][1]]
    config["stages"][0]["training"].update(max_steps=6, save_steps=2)
    save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if str(f).endswith("checkpoint-4/optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    with pytest.raises(DataError, match=r"no space left on the device while training tapt .* resumes from .*checkpoint-2"):
        pipeline.run(tmp_path / "run")
    assert verify(tmp_path / "run" / "tapt" / "checkpoints" / "checkpoint-2") is None
    monkeypatch.setattr(torch, "save", save)
    pipeline.run(tmp_path / "run")  # space freed: resumes from checkpoint-2
    record = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())["report"]
    assert record["resumed_from"].endswith("checkpoint-2") and record["checkpoints_skipped"] == ["checkpoint-4: no manifest (the save did not finish)"]


# --- bad numbers ----------------------------------------------------------------------------


def _tapt(tmp_path, **training):
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    config = tiny_pipeline_config(write_tiny_corpus(tmp_path / "corpus"), finetune=False)
    config["stages"] = [config["stages"][1]]
    config["stages"][0]["training"].update({"max_steps": 6, "save_steps": 2, **training})
    return config


def _nan_loss_at(monkeypatch, step):
    """Make the model's loss NaN at one optimizer step (the first micro-batch of it)."""
    import transformers

    compute = transformers.Trainer.compute_loss

    def compute_loss(self, model, inputs, *args, **kwargs):
        loss = compute(self, model, inputs, *args, **kwargs)
        if self.state.global_step + 1 == step:
            loss = loss * float("nan")
        return loss

    monkeypatch.setattr(transformers.Trainer, "compute_loss", compute_loss)


def test_a_nan_loss_stops_the_stage_naming_step_rows_and_last_good_checkpoint(tmp_path, plugin_manager, monkeypatch):
    from sec_cybert.errors import NumericalError
    from sec_cybert.host.pipeline import load_run_config

    _nan_loss_at(monkeypatch, 4)
    pipeline = load_run_config(_tapt(tmp_path), plugin_manager=plugin_manager).pipeline
    with pytest.raises(NumericalError, match=r"non-finite loss or gradients at step 4 \(training rows \[[\d, ]+\]\); the last good checkpoint is .*checkpoint-2"):
        pipeline.run(tmp_path / "run")
    assert not (tmp_path / "run" / "tapt" / "model.safetensors").exists()  # never saved as a final model
    assert not (tmp_path / "run" / "tapt" / "checkpoints" / "checkpoint-4").exists()


def test_skip_zeroes_the_bad_step_and_counts_it(tmp_path, plugin_manager, monkeypatch):
    import torch
    from transformers import AutoModelForMaskedLM

    from sec_cybert.host.pipeline import load_run_config

    _nan_loss_at(monkeypatch, 4)
    pipeline = load_run_config(_tapt(tmp_path, on_nonfinite="skip"), plugin_manager=plugin_manager).pipeline
    pipeline.run(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())
    assert record["report"]["nonfinite_steps_skipped"] == [4] and record["metrics"]["global_step"] == 6
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "run" / "tapt")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_gradient_norm_alarm_stops_the_stage(tmp_path, plugin_manager):
    from sec_cybert.errors import NumericalError
    from sec_cybert.host.pipeline import load_run_config

    pipeline = load_run_config(_tapt(tmp_path, grad_norm_alarm=1e-6, grad_norm_alarm_steps=2), plugin_manager=plugin_manager).pipeline
    with pytest.raises(NumericalError, match=r"gradient norm above grad_norm_alarm=1e-06 for 2 logged steps"):
        pipeline.run(tmp_path / "run")


def test_a_non_finite_checkpoint_is_refused_as_init_from(tmp_path, plugin_manager):
    import torch
    from transformers import AutoModelForMaskedLM

    from sec_cybert.errors import DataError
    from sec_cybert.host.pipeline import load_run_config

    pipeline = load_run_config(_tapt(tmp_path), plugin_manager=plugin_manager).pipeline
    base = Path(pipeline.materialize_encoder(tmp_path / "made"))
    model = AutoModelForMaskedLM.from_pretrained(base)
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("inf")
    bad = tmp_path / "bad-base"
    model.save_pretrained(bad)
    shutil.copy(base / "tokenizer.json", bad / "tokenizer.json")
    shutil.copy(base / "tokenizer_config.json", bad / "tokenizer_config.json")
    config = _tapt(tmp_path)
    config.update(encoder=str(bad))
    del config["encoder_options"]
    with pytest.raises(DataError, match=r"bad-base \(init_from\) has non-finite weights .* in 1 tensors"):
        load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_grad_norm", float("inf"), "must be a finite number, got inf"),
        ("num_train_epochs", float("inf"), "must be a finite number, got inf"),
        ("learning_rate", float("nan"), "must be a finite number, got nan"),
        ("per_device_train_batch_size", 10**12, "must be <= 1048576"),
    ],
)
def test_settings_that_cannot_train_are_refused(tmp_path, plugin_manager, key, value, expected):
    from sec_cybert.errors import ConfigError
    from sec_cybert.host.pipeline import load_run_config

    config = _tapt(tmp_path)
    config["stages"][0]["training"][key] = value
    with pytest.raises(ConfigError, match=rf"stages\[0\].training.{key}: .*{expected}"):
        load_run_config(config, plugin_manager=plugin_manager)


# --- records and upstream changes ---------------------------------------------------------


def test_a_torn_record_is_one_clear_line(tmp_path, plugin_manager):
    from sec_cybert.errors import DataError
    from sec_cybert.host.pipeline import load_run_config

    pipeline = load_run_config(_tapt(tmp_path, max_steps=1, save_strategy="no"), plugin_manager=plugin_manager).pipeline
    pipeline.run(tmp_path / "run")
    record = tmp_path / "run" / "tapt" / "stage.json"
    record.write_text(record.read_text()[:40])
    with pytest.raises(DataError, match=r"stage.json \(a finished stage's record\) is not readable JSON .* delete it"):
        pipeline.run(tmp_path / "run")
    record.unlink()
    (tmp_path / "run" / "lineage.json").write_text("{")
    with pytest.raises(DataError, match=r"lineage.json \(the run's lineage\) is not readable JSON"):
        pipeline.run(tmp_path / "run")


@pytest.mark.slow  # trains the chain twice
def test_an_upstream_change_is_noticed_and_refused_or_redone(tmp_path, plugin_manager):
    from sec_cybert.errors import ConfigError
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    config = tiny_pipeline_config(write_tiny_corpus(tmp_path / "corpus"))
    for stage in config["stages"]:
        # No warmup: one step at learning rate 0 would leave the weights as they were.
        stage["training"].update(max_steps=1, save_strategy="no", num_train_epochs=1, warmup_ratio=0.0)
    run = load_run_config(config, plugin_manager=plugin_manager).pipeline
    run.run(tmp_path / "run")
    # The TAPT corpus loses a paragraph after TAPT trained on it.
    paragraphs = Path(config["stages"][1]["corpus"]["path"])
    paragraphs.write_text("\n".join(paragraphs.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(ConfigError, match=r"tapt was trained on other inputs .*data file .*paragraphs.jsonl changed.*on_input_change: redo"):
        run.run(tmp_path / "run")
    config["on_input_change"] = "redo"
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    assert list((tmp_path / "run").glob("tapt.replaced-*"))  # the old TAPT kept beside
    # ... and the fine-tune of +DAPT+TAPT, whose input weights changed with it, was redone too.
    assert list((tmp_path / "run").glob("finetune-dapt-tapt.replaced-*"))
    assert not list((tmp_path / "run").glob("dapt.replaced-*"))


def test_a_corpus_of_blank_texts_is_refused_not_trained_at_loss_zero(tmp_path, plugin_manager):
    from sec_cybert.errors import DataError
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import write_jsonl

    config = _tapt(tmp_path)
    write_jsonl(Path(config["stages"][0]["corpus"]["path"]), [{"id": f"p{i}", "text": " \n\t "} for i in range(20)])
    config["encoder"], config["encoder_options"] = "tiny-modernbert", {**config["encoder_options"]}
    with pytest.raises(DataError, match=r"holds 20 documents and every one is blank"):
        stage = load_run_config(config, plugin_manager=plugin_manager).pipeline.stages[0]
        from sec_cybert.core.encoders import train_bpe_tokenizer

        stage.prepare_data(train_bpe_tokenizer(["some text to learn from"] * 10, vocab_size=280), seed=0)


def test_encoder_options_of_a_pipeline_built_in_python_are_checked_before_anything_runs(tmp_path, plugin_manager):
    from sec_cybert.errors import ConfigError
    from sec_cybert.host.pipeline import load_run_config

    stages = load_run_config(_tapt(tmp_path), plugin_manager=plugin_manager).pipeline.stages
    from sec_cybert import Pipeline

    pipeline = Pipeline(encoder="tiny-modernbert", encoder_options={"hiden_size": 32}, stages=stages, hardware="cpu", plugin_manager=plugin_manager)
    with pytest.raises(ConfigError, match=r"encoder_options.hiden_size: unknown option .*did you mean 'hidden_size'"):
        pipeline.run(tmp_path / "run")
    assert not (tmp_path / "run" / "base").exists()
