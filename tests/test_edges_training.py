"""Edges of training: what an encoder directory is, maskers that give no or impossible targets,
a full disk in a wrapped form, SIGTERM before training starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import attrs
import pytest
import torch

from sec_cybert import hookimpl
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker
from sec_cybert.errors import DataError, PluginError
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config, write_tiny_corpus


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


# --- maskers that give no targets, or targets the model cannot index ---------------------------


@attrs.frozen
class NoTargets:
    needs_word_ids: bool = attrs.field(default=False, init=False)

    def mask(self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None):
        return input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)


@attrs.frozen
class SomeBatchesWithout:
    """Token masking on every other batch (by a draw), none on the others."""

    needs_word_ids: bool = attrs.field(default=False, init=False)

    def mask(self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None):
        if float(torch.rand(1, generator=generator)) < 0.5:
            return input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
        return TokenMasker(probability=0.3).mask(
            input_ids, special_tokens_mask, mask_token_id=mask_token_id, vocab_size=vocab_size, generator=generator
        )


@attrs.frozen
class LabelsPastVocab:
    needs_word_ids: bool = attrs.field(default=False, init=False)

    def mask(self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None):
        chosen = ~special_tokens_mask.bool()
        return input_ids.clone(), torch.where(chosen, input_ids + vocab_size, IGNORE_INDEX)


@attrs.frozen
class MaskIdPastVocab:
    needs_word_ids: bool = attrs.field(default=False, init=False)

    def mask(self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None):
        chosen = ~special_tokens_mask.bool()
        return torch.where(chosen, vocab_size + 7, input_ids), torch.where(chosen, input_ids, IGNORE_INDEX)


class AcmeMaskers:
    @hookimpl
    def register_maskers(self, register):
        register("no-targets", NoTargets)
        register("some-batches-without", SomeBatchesWithout)
        register("labels-past-vocab", LabelsPastVocab)
        register("mask-id-past-vocab", MaskIdPastVocab)


@pytest.fixture
def acme():
    pm = builtin_plugin_manager()
    pm.register(AcmeMaskers(), name="acme-maskers")
    return pm


def _with_masker(tmp_path, kind, **training):
    config = _tapt(tmp_path, save_strategy="steps", save_steps=100, **training)
    config["stages"][0]["masker"] = {"kind": kind}
    return config


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse-prediction", "dense"])
def test_a_masker_that_never_gives_a_target_stops_the_stage_naming_the_step(tmp_path, acme, sparse):
    config = _with_masker(tmp_path, "no-targets", max_steps=30, per_device_train_batch_size=2)
    config["stages"][0]["sparse_prediction"] = sparse
    pipeline = load_run_config(config, plugin_manager=acme).pipeline
    with pytest.raises(DataError, match=r"no masked-LM targets in any batch of steps 1-10 of tapt: the masker 'no-targets' \(NoTargets, plugin 'acme-maskers'\) chose none"):
        pipeline.run(tmp_path / "run")
    assert not (tmp_path / "run" / "tapt" / "model.safetensors").exists()


def test_a_short_stage_without_targets_stops_at_its_last_step(tmp_path, acme):
    pipeline = load_run_config(_with_masker(tmp_path, "no-targets", max_steps=3), plugin_manager=acme).pipeline
    with pytest.raises(DataError, match=r"no masked-LM targets in any batch of steps 1-3 of tapt"):
        pipeline.run(tmp_path / "run")


def test_batches_without_targets_are_counted(tmp_path, acme):
    config = _with_masker(tmp_path, "some-batches-without", max_steps=8, per_device_train_batch_size=2)
    load_run_config(config, plugin_manager=acme).pipeline.run(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())
    assert 0 < record["report"]["batches_without_targets"] < 8
    assert record["metrics"]["global_step"] == 8


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("labels-past-vocab", r"the masker 'labels-past-vocab' \(LabelsPastVocab, plugin 'acme-maskers'\) gave label \d+, outside the model's vocabulary of \d+ ids"),
        ("mask-id-past-vocab", r"the masker 'mask-id-past-vocab' \(MaskIdPastVocab, plugin 'acme-maskers'\) put token id \d+ into the batch, outside the model's vocabulary"),
    ],
)
def test_a_masker_with_ids_outside_the_vocabulary_is_refused_before_training(tmp_path, acme, kind, message):
    pipeline = load_run_config(_with_masker(tmp_path, kind), plugin_manager=acme).pipeline
    with pytest.raises(PluginError, match=message):
        pipeline.run(tmp_path / "run")
    assert not (tmp_path / "run" / "tapt" / "training-log.jsonl").exists()  # nothing trained


@pytest.mark.parametrize(
    ("masker", "message"),
    [
        (LabelsPastVocab(), "labels must be token ids of the vocabulary"),
        (MaskIdPastVocab(), "token ids outside the vocabulary"),
    ],
)
def test_the_conformance_check_refuses_ids_outside_the_vocabulary(masker, message):
    from sec_cybert.testing.conformance import check_masker

    with pytest.raises(AssertionError, match=message):
        check_masker(masker)


# --- a full disk, in the forms the savers wrap it in -------------------------------------------


def _fail_saving(monkeypatch, form):
    """Make the save of checkpoint-4 fail as a full disk does under safetensors or torch.save."""
    if form == "safetensors":
        import transformers.modeling_utils as modeling
        from safetensors import SafetensorError

        save = modeling.safe_save_file

        def full(tensors, filename, *args, **kwargs):
            if "checkpoint-4" in str(filename):
                raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')
            return save(tensors, filename, *args, **kwargs)

        monkeypatch.setattr(modeling, "safe_save_file", full)
        return
    save = torch.save

    def full(obj, f, *args, **kwargs):
        if str(f).endswith("checkpoint-4/optimizer.pt"):
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4416 vs 4310: basic_ios::clear: iostream error")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)


@pytest.mark.parametrize("form", ["safetensors", "torch.save"])
def test_a_full_disk_in_a_wrapped_form_is_one_line_naming_the_directory_and_free_space(tmp_path, plugin_manager, monkeypatch, form):
    from sec_cybert.stages.checkpointing import verify

    config = _tapt(tmp_path, max_steps=6, save_strategy="steps", save_steps=2)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _fail_saving(patch, form)
        if form == "torch.save":
            # A write error that says nothing of space, with room to spare, is not called a full disk.
            with pytest.raises(RuntimeError, match="basic_ios::clear"):
                pipeline.run(run)
            from sec_cybert.stages import diskfull

            patch.setattr(diskfull, "_free", lambda directory: 4096)
        with pytest.raises(DataError, match=r"no space left on the device while training tapt into .*run/tapt/checkpoints \((\d|\.)+ \w+ free there; a checkpoint takes about .*\): free some space .* resumes from .*checkpoint-2") as error:
            pipeline.run(run)
    assert "\n" not in str(error.value)
    assert verify(run / "tapt" / "checkpoints" / "checkpoint-2") is None
    pipeline.run(run)  # space freed: resumes from checkpoint-2
    assert json.loads((run / "tapt" / "stage.json").read_text())["report"]["resumed_from"].endswith("checkpoint-2")


# --- SIGTERM before training starts ------------------------------------------------------------

#: A runner that sends itself SIGTERM right after ``Class.method`` returns, then runs the CLI.
SIGTERM_AFTER = """
import os, signal, sys
from sec_cybert import cli
from {module} import {cls}

original = {cls}.{method}

def then_terminated(self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # the notice arrives while the run is still setting up
    return result

{cls}.{method} = then_terminated
sys.exit(cli.main(["run", sys.argv[1], "--out", sys.argv[2]]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "cls", "method", "said", "left"),
    [
        # A stage reading its corpus: the stage's own start-up.
        ("sec_cybert.stages.mlm", "MLMStage", "prepare_data", "in tapt outside its training steps", "tapt/stage.json"),
        # Before the first stage: the contamination check has run, no stage has started.
        (
            "sec_cybert.host.pipeline",
            "Pipeline",
            "contamination_check",
            "before the first stage (the contamination check, the encoder)",
            "tapt",
        ),
    ],
    ids=["in-a-stage", "before-the-first-stage"],
)
def test_sigterm_during_start_up_is_one_line_and_status_143(tmp_path, preloaded_python, module, cls, method, said, left):
    import yaml

    config = tmp_path / "tapt.yaml"
    config.write_text(yaml.safe_dump(_tapt(tmp_path)))
    script = tmp_path / "runner.py"
    script.write_text(SIGTERM_AFTER.format(module=module, cls=cls, method=method))
    done = preloaded_python.run([script, config, tmp_path / "run"], timeout=600)
    assert done.returncode == 143, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"stopped: stopped by SIGTERM {said}")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / left).exists()
