"""What ``freeze-embeddings`` does to the weights, for real: frozen for ``steps`` optimizer steps,
trained after; the rest of the model trains from step 1; a resumed run picks up where it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.host.planner import plan_pipeline
from sec_cybert.testing import TINY_ENCODER_OPTIONS, builtin_plugin_manager, write_tiny_corpus
from transformers import AutoModelForMaskedLM, TrainerControl, TrainerState, TrainingArguments

from sec_cybert_freeze import FreezeEmbeddingsStage, plugin
from sec_cybert_freeze.callbacks import FreezeEmbeddings

STEPS, MAX_STEPS = 2, 4


def plugin_manager():
    pm = builtin_plugin_manager()  # the built-ins only, then this package's hooks
    pm.register(plugin, name="freeze")
    return pm


def freeze_config(corpus, *, steps=STEPS, max_steps=MAX_STEPS):
    """A pipeline config (as YAML gives it) with one freeze-embeddings stage, a checkpoint per step."""
    return {
        "encoder": "tiny-modernbert",
        "encoder_options": dict(TINY_ENCODER_OPTIONS),
        "hardware": "ci-runner",
        "seed": 3,
        "stages": [
            {
                "kind": "freeze-embeddings",
                "steps": steps,
                "mlm": {
                    "name": "dapt",
                    "corpus": {"kind": "jsonl-shards", "path": str(corpus.shards)},
                    "chunker": {"kind": "concat", "seq_len": 64},
                    "masker": {"kind": "token", "probability": 0.3},
                    "validation_split": 0.0,
                    "training": {
                        "per_device_train_batch_size": 8,
                        "gradient_accumulation_steps": 1,
                        "max_steps": max_steps,
                        "learning_rate": 1.0e-3,
                        "warmup_ratio": 0.0,  # a warmup step has learning rate 0: nothing would move
                        "logging_steps": 1,
                        "save_steps": 1,
                        "save_total_limit": None,
                    },
                },
            }
        ],
    }


def weights(path: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The input embeddings of the checkpoint at ``path``, and every other parameter by name."""
    model = AutoModelForMaskedLM.from_pretrained(path)
    embeddings = model.get_input_embeddings().weight
    others = {n: p.detach().clone() for n, p in model.named_parameters() if p is not embeddings}
    return embeddings.detach().clone(), others


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run of the stage: 4 steps, embeddings frozen for the first 2, a checkpoint after each."""
    root = tmp_path_factory.mktemp("freeze")
    config = freeze_config(write_tiny_corpus(root / "corpus"))
    load_run_config(config, plugin_manager=plugin_manager()).pipeline.run(root / "run")
    return root / "run", config


def test_embeddings_stay_frozen_for_steps_then_train(trained):
    run, _ = trained
    checkpoints = run / "dapt" / "checkpoints"
    base_embeddings, base_others = weights(run / "base")
    for step in range(1, MAX_STEPS + 1):
        embeddings, others = weights(checkpoints / f"checkpoint-{step}")
        frozen = step <= STEPS
        assert torch.equal(embeddings, base_embeddings) == frozen, f"step {step}"
        # Everything else trains from the first step on.
        moved = [n for n, p in others.items() if not torch.equal(p, base_others[n])]
        assert moved == list(others), f"step {step}: unchanged {set(others) - set(moved)}"
    final, _ = weights(run / "dapt")
    assert torch.equal(final, weights(checkpoints / f"checkpoint-{MAX_STEPS}")[0])
    previous, _ = weights(checkpoints / f"checkpoint-{STEPS}")
    after, _ = weights(checkpoints / f"checkpoint-{STEPS + 1}")
    assert not torch.equal(after, previous)  # the first step after the freeze moves them


def test_the_stage_record_says_how_long_they_were_frozen(trained):
    run, _ = trained
    record = json.loads((run / "dapt" / "stage.json").read_text())
    assert record["kind"] == "freeze-embeddings" and record["produces_variant"] is True
    assert record["config"]["steps"] == STEPS
    report = record["report"]["freeze_embeddings"]
    assert report == {"steps": STEPS, "started_at_step": 0, "frozen_steps": STEPS}


@pytest.mark.parametrize("interrupted_after", [1, STEPS])
def test_a_resumed_run_freezes_only_the_steps_left(trained, tmp_path, interrupted_after):
    """Resumed before ``steps`` it freezes for the steps left; resumed at ``steps``, not at all."""
    run, config = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    stage_dir = copy / "dapt"
    checkpoints = stage_dir / "checkpoints"
    # What a run killed after checkpoint N leaves: no stage.json, no final model, checkpoints <= N.
    (stage_dir / "stage.json").unlink()
    (stage_dir / "model.safetensors").unlink()
    for step in range(interrupted_after + 1, MAX_STEPS + 1):
        shutil.rmtree(checkpoints / f"checkpoint-{step}")
    load_run_config(config, plugin_manager=plugin_manager()).pipeline.run(copy)

    report = json.loads((stage_dir / "stage.json").read_text())["report"]["freeze_embeddings"]
    frozen_steps = STEPS - interrupted_after
    assert report == {"steps": STEPS, "started_at_step": interrupted_after, "frozen_steps": frozen_steps}
    base, _ = weights(copy / "base")
    for step in range(interrupted_after + 1, MAX_STEPS + 1):  # the checkpoints the resumed run wrote
        embeddings, _ = weights(checkpoints / f"checkpoint-{step}")
        assert torch.equal(embeddings, base) == (step <= STEPS), f"step {step}"


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 10)

    def get_input_embeddings(self):
        return self.embed


def _events(callback, model, *, start, end):
    """Drive ``callback`` through a training run from step ``start`` to ``end``; the embeddings'
    ``requires_grad`` seen during each step."""
    args = TrainingArguments(output_dir="unused", use_cpu=True, report_to="none")
    state, control = TrainerState(global_step=start), TrainerControl()
    callback.on_train_begin(args, state, control, model=model)
    seen = []
    while state.global_step < end:
        seen.append(model.embed.weight.requires_grad)
        state.global_step += 1
        callback.on_step_end(args, state, control, model=model)
    callback.on_train_end(args, state, control, model=model)
    return seen


@pytest.mark.parametrize(
    ("steps", "start", "end", "trainable"),
    [
        (2, 0, 4, [False, False, True, True]),  # fresh run
        (2, 1, 4, [False, True, True]),  # resumed before `steps`: frozen for the step left
        (2, 2, 4, [True, True]),  # resumed at `steps`
        (2, 3, 4, [True]),  # resumed past it
        (0, 0, 2, [True, True]),  # steps 0: never frozen
        (5, 0, 2, [False, False]),  # training ends first
    ],
)
def test_the_callback_follows_the_trainer_step(steps, start, end, trainable):
    model = _Model()
    callback = FreezeEmbeddings(steps)
    assert _events(callback, model, start=start, end=end) == trainable
    assert model.embed.weight.requires_grad and model.out.weight.requires_grad  # handed back as it came
    assert callback.report()["frozen_steps"] == trainable.count(False)


def test_plan_says_how_many_steps_are_frozen(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    pipeline = load_run_config(freeze_config(corpus, steps=9), plugin_manager=plugin_manager()).pipeline
    (planned,) = plan_pipeline(pipeline).stages
    assert planned.kind == "freeze-embeddings" and planned.optimizer_steps == MAX_STEPS
    assert planned.notes[-1] == (
        "input embeddings frozen for the first 4 of 4 optimizer steps (all of them: they will not train)"
    )


def test_config_errors_name_the_key(tmp_path):
    from sec_cybert.errors import ConfigError

    config = freeze_config(write_tiny_corpus(tmp_path / "corpus"), steps=-1)
    del config["stages"][0]["mlm"]["masker"]
    with pytest.raises(ConfigError) as caught:
        load_run_config(config, plugin_manager=plugin_manager())
    assert set(caught.value.problems) == {
        "stages[0].steps: got -1; must be >= 0",
        "stages[0].mlm.masker: missing; expected Masker",
    }
    assert FreezeEmbeddingsStage.produces_variant is True
