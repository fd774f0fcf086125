"""The config loader: every problem at once, with key path, bad value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sec_cybert.errors import ConfigError
from sec_cybert.host.config import load_yaml, resolve_config_path, unstructure
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import tiny_pipeline_config


def _problems(config, plugin_manager):
    with pytest.raises(ConfigError) as caught:
        load_run_config(config, plugin_manager=plugin_manager)
    return caught.value.problems


def test_valid_config_builds_typed_components(tiny_corpus, plugin_manager):
    run = load_run_config(tiny_pipeline_config(tiny_corpus), plugin_manager=plugin_manager)
    dapt, tapt, finetune = run.pipeline.stages
    assert (dapt.name, dapt.produces_variant, dapt.chunker.seq_len, dapt.masker.probability) == ("dapt", True, 64, 0.3)
    assert not finetune.produces_variant
    assert type(tapt.masker).__name__ == "WholeWordMasker" and tapt.chunker.provides_word_ids
    assert [h.kind for h in finetune.heads] == ["softmax", "coral"]
    assert isinstance(dapt.corpus.path, Path)


def test_every_problem_is_reported_at_once(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["seed"] = "seven"
    config["hardware"] = "tpu-v9"
    dapt = config["stages"][0]
    dapt["training"]["learning_rate"] = "fast"
    dapt["training"]["lr"] = 0.1
    dapt["masker"]["probability"] = 1.5
    dapt["chunker"]["kind"] = "concatt"
    dapt["corpus"]["path"] = str(tiny_corpus.shards / "missing")
    config["stages"][1]["validation_split"] = -0.5
    del config["stages"][2]["train_file"]
    problems = _problems(config, plugin_manager)
    text = "\n".join(problems)
    expected = [
        "seed: got 'seven'; expected an integer",
        "stages[0].training.learning_rate: got 'fast'; expected a number",
        "stages[0].training.lr: unknown key; did you mean 'learning_rate'?",
        "stages[0].masker.probability: probability must be strictly between 0 and 1, got 1.5",
        "hardware: unknown hardware profile 'tpu-v9'; known: auto, a100, cpu, cuda, h100, rtx3090",
        "stages[0].chunker.kind: unknown chunker 'concatt' (did you mean 'concat'?); known: concat, packed, paragraph",
        "stages[0].corpus.path: path '",
        "stages[1].validation_split: got -0.5; must be >= 0",
        "stages[2].train_file: missing",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), f"{line!r} not in:\n{text}"
    assert len(problems) >= len(expected)


def test_contamination_and_deduplication_settings_are_validated(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["contamination"] = {"pretraining": "drop", "treshold": 0.9}
    config["stages"][1]["deduplicate"] = {"mode": "fuzzy", "threshold": 1.5}
    problems = _problems(config, plugin_manager)
    assert "contamination.pretraining: got 'drop'; expected one of 'exclude', 'warn', 'error'" in problems
    assert any(p.startswith("contamination.treshold: unknown key; did you mean 'threshold'?") for p in problems)
    assert "stages[1].deduplicate.mode: got 'fuzzy'; expected one of 'none', 'exact', 'near'" in problems
    assert "stages[1].deduplicate.threshold: got 1.5; must be <= 1" in problems


def test_wrong_types_name_the_expected_type(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"][0]["training"]["per_device_train_batch_size"] = 2.5
    config["stages"][0]["training"]["bf16"] = "yes"
    config["stages"][0]["max_tokens"] = True
    problems = _problems(config, plugin_manager)
    assert "stages[0].training.per_device_train_batch_size: got 2.5; expected an integer" in problems
    assert "stages[0].training.bf16: got 'yes'; expected true or false or null" in problems
    assert any(p.startswith("stages[0].max_tokens: got True") for p in problems)


def test_stage_and_component_consistency_is_checked(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"][0]["masker"] = {"kind": "whole-word"}  # concat chunker without word ids
    problems = _problems(config, plugin_manager)
    assert any("stages[0]" in p and "word ids" in p for p in problems)


def test_label_sets_are_validated(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"][2]["heads"][0]["labels"] = ["only-one"]
    config["stages"][2]["heads"][1]["kind"] = "ordinal"
    problems = _problems(config, plugin_manager)
    assert any(p.startswith("stages[2].heads[0].labels") and "at least 2 labels" in p for p in problems)
    assert any(p.startswith("stages[2].heads[1].kind: got 'ordinal'") for p in problems)


def test_yaml_floats_like_5e_5_are_accepted(tiny_corpus, plugin_manager, tmp_path):
    config = tiny_pipeline_config(tiny_corpus)
    text = yaml.safe_dump(config).replace("learning_rate: 0.001", "learning_rate: 5e-5")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    data = load_yaml(path)
    assert data["stages"][0]["training"]["learning_rate"] == "5e-5"  # YAML 1.1 reads it as a string
    run = load_run_config(data, plugin_manager=plugin_manager)
    assert run.pipeline.stages[0].training.learning_rate == 5e-5


def test_unparsable_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("encoder: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config_path(tmp_path / "nope.yaml")


def test_unstructure_round_trips(tiny_corpus, plugin_manager):
    run = load_run_config(tiny_pipeline_config(tiny_corpus), plugin_manager=plugin_manager)
    stage = run.pipeline.stages[1]
    data = unstructure(stage)
    assert data["kind"] == "mlm" and data["masker"]["kind"] == "whole-word"
    again = load_run_config({"encoder": "tiny-modernbert", "stages": [data]}, plugin_manager=plugin_manager)
    assert again.pipeline.stages[0] == stage


# -- the shipped configs hold the reference procedure's values ---------------------------------


def _with_paths(config, tmp_path, tiny_corpus):
    """Point the shipped config's data paths at files that exist, keeping every other value."""
    config = copy.deepcopy(config)
    for stage in config["stages"]:
        if stage["kind"] == "mlm":
            stage["corpus"]["path"] = str(tiny_corpus.shards if stage["corpus"]["kind"] == "jsonl-shards" else tiny_corpus.paragraphs)
        else:
            for key in ("train_file", "eval_file", "holdout_file"):
                stage[key] = str(tiny_corpus.train)
    return config


def _shipped(name, tmp_path, tiny_corpus, plugin_manager):
    data = load_yaml(resolve_config_path(f"configs/{name}"))
    return load_run_config(_with_paths(data, tmp_path, tiny_corpus), plugin_manager=plugin_manager)


def test_shipped_dapt_config_is_the_reference(tmp_path, tiny_corpus, plugin_manager):
    run = _shipped("dapt/modernbert.yaml", tmp_path, tiny_corpus, plugin_manager)
    assert run.pipeline.encoder == "answerdotai/ModernBERT-large"
    (stage,) = run.pipeline.stages
    t = stage.training
    assert stage.name == "dapt" and stage.chunker.seq_len == 8192 and stage.masker.probability == 0.30
    assert (stage.masker.mask_replace_prob, stage.masker.random_replace_prob) == (0.8, 0.1)
    assert stage.max_tokens == 500_000_000 and stage.validation_split == 0.02 and stage.corpus.min_chars == 10_000
    assert (t.per_device_train_batch_size, t.gradient_accumulation_steps, t.num_train_epochs) == (4, 8, 1)
    assert (t.learning_rate, t.weight_decay, t.warmup_ratio) == (5e-5, 1e-5, 0.05)
    assert t.gradient_checkpointing and t.bf16 and t.tf32 and t.torch_compile
    assert (t.optim, t.attn_implementation) == ("adamw_torch_fused", "flash_attention_2")
    assert (t.save_steps, t.eval_steps, t.save_total_limit, t.logging_steps) == (1000, 1000, 3, 50)


def test_shipped_tapt_config_is_the_reference(tmp_path, tiny_corpus, plugin_manager):
    run = _shipped("tapt/modernbert.yaml", tmp_path, tiny_corpus, plugin_manager)
    (stage,) = run.pipeline.stages
    t = stage.training
    assert run.pipeline.encoder == "checkpoints/modernbert-large/dapt"
    assert stage.chunker.max_length == 512 and type(stage.masker).__name__ == "WholeWordMasker"
    assert stage.masker.probability == 0.30 and stage.masker.mask_replace_prob == 1.0
    assert (t.num_train_epochs, t.per_device_train_batch_size, t.gradient_accumulation_steps) == (5, 32, 1)
    assert not t.gradient_checkpointing and t.save_strategy == "epoch" and stage.validation_split == 0.05
    # Ours, beyond the reference: near-duplicate paragraphs are kept once.
    assert (stage.deduplicate.mode, stage.deduplicate.threshold, stage.deduplicate.drop) == ("near", 0.8, True)


def test_shipped_pipeline_config_chains_the_three(tmp_path, tiny_corpus, plugin_manager):
    run = _shipped("pipeline/sec-cybert-large.yaml", tmp_path, tiny_corpus, plugin_manager)
    assert [s.name for s in run.pipeline.stages] == ["dapt", "tapt", "finetune"]
    assert run.ablation_seeds == (42, 43, 44)
    policy = run.pipeline.contamination
    assert (policy.pretraining, policy.finetune, policy.threshold) == ("exclude", "error", 0.8)
    assert run.pipeline.stages[0].deduplicate.mode == "exact" and run.pipeline.stages[1].deduplicate.mode == "near"
    tapt = load_run_config(_with_paths(load_yaml(resolve_config_path("configs/tapt/modernbert.yaml")), tmp_path, tiny_corpus), plugin_manager=plugin_manager)
    assert run.pipeline.stages[1] == tapt.pipeline.stages[0]
    dapt = load_run_config(_with_paths(load_yaml(resolve_config_path("configs/dapt/modernbert.yaml")), tmp_path, tiny_corpus), plugin_manager=plugin_manager)
    assert run.pipeline.stages[0] == dapt.pipeline.stages[0]


def test_shipped_deberta_config_builds(tmp_path, tiny_corpus, plugin_manager):
    run = _shipped("dapt/deberta-v3.yaml", tmp_path, tiny_corpus, plugin_manager)
    (stage,) = run.pipeline.stages
    assert run.pipeline.encoder == "microsoft/deberta-v3-base"
    assert (stage.chunker.seq_len, stage.training.attn_implementation, stage.training.effective_batch_size) == (512, "eager", 32)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 4, "a binary file (it holds NUL bytes), not a YAML config"),
        (b'\x48\x00\x00\x00\x00\x00\x00\x00{"__metadata__": {"format": "pt"}}', "a binary file"),
        ("encoder: caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 12): save the config as UTF-8"),
        (b"encoder: tiny\nseed: 4\x072\n", "not valid YAML at line 2: control character #x0007 is not allowed"),
        (b"[" * 50_000, "not valid YAML: nested too deeply"),
    ],
)
def test_a_binary_or_undecodable_config_is_one_line(tmp_path, content, expected):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_a_directory_given_as_config_says_so(tmp_path):
    with pytest.raises(ConfigError, match="is a directory; give the path of a YAML config file"):
        load_yaml(tmp_path)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"hiden_size": 64},
            "encoder_options.hiden_size: unknown option of encoder 'tiny-modernbert'; did you mean "
            "'hidden_size'? allowed: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, "
            "intermediate_size, max_position_embeddings, seed",
        ),
        (
            {"hidden_size": 64, "num_attention_heads": 3},
            "encoder_options.hidden_size: hidden_size 64 is not divisible by num_attention_heads 3",
        ),
        ({"num_hidden_layers": 0}, "encoder_options.num_hidden_layers: got 0; must be a positive integer"),
        ({"num_attention_heads": -2}, "encoder_options.num_attention_heads: got -2; must be a positive integer"),
        ({"hidden_size": "64"}, "encoder_options.hidden_size: got '64'; expected an integer"),
        (
            {"hidden_size": 6, "num_attention_heads": 2},
            "encoder_options.hidden_size: hidden_size / num_attention_heads = 3 must be even",
        ),
    ],
)
def test_encoder_options_are_checked_when_the_config_is_loaded(tiny_corpus, plugin_manager, options, expected):
    config = tiny_pipeline_config(tiny_corpus)
    config["encoder_options"].update(options)
    (problem,) = _problems(config, plugin_manager)
    assert problem.startswith(expected), problem


def test_a_hub_encoder_refuses_options_rather_than_ignoring_them(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["encoder"] = "modernbert-large"
    (problem,) = _problems(config, plugin_manager)
    assert problem.startswith(
        "encoder_options: encoder 'modernbert-large' is a hub checkpoint and takes no options (got vocab_size, "
    )


def test_encoder_options_are_checked_from_python_before_anything_is_built(tmp_path):
    from sec_cybert.core.encoders import tiny_modernbert, write_random_encoder

    def never(tokenizer):
        raise AssertionError("the model must not be built")

    with pytest.raises(ConfigError, match="encoder_options.hiden_size: unknown option .*did you mean 'hidden_size'"):
        tiny_modernbert(tmp_path, iter(()), hiden_size=64)
    with pytest.raises(ConfigError, match="encoder_options.num_hidden_layers: got 0; must be a positive integer"):
        write_random_encoder(
            tmp_path, iter(()), never, name="plugin-encoder", recipe={"num_hidden_layers": 0, "vocab_size": 300}
        )
    assert not (tmp_path / "base").exists()
