"""The NeoBERT example plugin (examples/plugins/sec-cybert-neobert): model, Auto registration, hooks,
and a run of the library's own pipeline on it. ``conftest.py`` puts its ``src`` on ``sys.path``."""

from __future__ import annotations

import importlib
import json
import pkgutil
import random

import pytest
import torch
from sec_cybert_neobert import NeoBERTConfig, NeoBERTForMaskedLM, NeoBERTModel, register_auto_classes
from sec_cybert_neobert import plugin as neobert_plugin
from sec_cybert_neobert.modeling_neobert import apply_rotary, rotary_cos_sin

from sec_cybert.errors import ConfigError

VOCAB = 97


def tiny_config(**overrides) -> NeoBERTConfig:
    values = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
        pad_token_id=0,
    )
    return NeoBERTConfig(**{**values, **overrides})


def tiny_mlm(seed: int = 0, **overrides) -> NeoBERTForMaskedLM:
    torch.manual_seed(seed)
    return NeoBERTForMaskedLM(tiny_config(**overrides)).eval()


def random_ids(batch: int, seq: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, seq), generator=generator)


# --- 1. shapes and learning ------------------------------------------------------------------------
def test_published_defaults_and_tiny_shapes():
    published = NeoBERTConfig()
    assert (published.hidden_size, published.num_hidden_layers, published.num_attention_heads) == (
        768,
        28,
        12,
    )
    assert (published.intermediate_size, published.max_position_embeddings, published.vocab_size) == (
        3072,
        4096,
        30522,
    )
    assert published.swiglu_hidden_size == 2048  # 2/3 of 3072, a multiple of 8

    model = tiny_mlm()
    assert model.decoder.weight is model.model.encoder.weight  # tied by default
    assert all(
        layer.bias is None
        for name, layer in model.named_modules()
        if isinstance(layer, torch.nn.Linear) and name != "decoder"
    )
    ids = random_ids(3, 11)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    assert out.logits.shape == (3, 11, VOCAB)
    assert len(out.hidden_states) == 3  # embeddings + one per layer
    base_out = model.model(input_ids=ids)
    assert base_out.last_hidden_state.shape == (3, 11, 64)


def test_mlm_loss_is_finite_ignores_minus_100_and_decreases():
    model = tiny_mlm().train()
    ids = random_ids(4, 16)
    labels = torch.full_like(ids, -100)
    labels[:, ::3] = ids[:, ::3]
    inputs = ids.clone()
    inputs[:, ::3] = VOCAB - 1  # a stand-in [MASK]
    mask = torch.ones_like(ids)

    out = model(input_ids=inputs, attention_mask=mask, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[labels != -100], labels[labels != -100])
    torch.testing.assert_close(out.loss, expected)
    # Under gradient accumulation the Trainer passes the token count of the whole accumulated batch.
    summed = model(input_ids=inputs, attention_mask=mask, labels=labels, num_items_in_batch=100).loss
    torch.testing.assert_close(summed, expected * (labels != -100).sum() / 100)

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_gradient_checkpointing_gives_the_same_gradients():
    ids = random_ids(2, 9)
    grads = []
    for checkpointing in (False, True):
        model = tiny_mlm().train()
        if checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # the name from transformers 5.2x on
                model.activation_checkpointing_enable({"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert all(layer.gradient_checkpointing for layer in model.model.transformer_encoder)
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append(model.model.transformer_encoder[0].qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


# --- 2. padding -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_right_padding_does_not_change_the_real_tokens(attn_implementation):
    model = tiny_mlm()
    model.config._attn_implementation = attn_implementation
    ids = random_ids(1, 7)
    alone = model.model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state

    # The same sequence, padded to 12 next to a full-length neighbour.
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    neighbour = random_ids(1, 12, seed=2)
    batch = torch.cat([padded, neighbour])
    mask = torch.tensor([[1] * 7 + [0] * 5, [1] * 12])
    together = model.model(input_ids=batch, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(together[0, :7], alone[0], atol=1e-5, rtol=1e-5)
    # ... and the padded rows really were masked: without the mask the result differs.
    unmasked = model.model(input_ids=batch).last_hidden_state
    assert not torch.allclose(unmasked[0, :7], alone[0], atol=1e-3)


def test_sdpa_and_eager_agree():
    model = tiny_mlm()
    ids = random_ids(2, 10)
    mask = torch.tensor([[1] * 10, [1] * 6 + [0] * 4])
    outputs = {}
    for impl in ("sdpa", "eager"):
        model.config._attn_implementation = impl
        outputs[impl] = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(outputs["sdpa"], outputs["eager"], atol=1e-5, rtol=1e-5)


# --- 3. rotary position embeddings ------------------------------------------------------------------
def test_rope_is_the_complex_rotation_of_adjacent_pairs():
    head_dim, positions = 16, torch.arange(5)[None]
    x = torch.randn(1, 1, 5, head_dim)
    cos, sin = rotary_cos_sin(positions, head_dim, theta=10000.0)
    angles = torch.atan2(sin, cos)
    expected = torch.view_as_real(
        torch.view_as_complex(x.unflatten(-1, (-1, 2)).contiguous())
        * torch.polar(torch.ones_like(angles), angles)[:, None]
    ).flatten(-2)
    torch.testing.assert_close(apply_rotary(x, cos, sin), expected)
    torch.testing.assert_close(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1))  # a rotation
    torch.testing.assert_close(
        apply_rotary(x[..., :1, :], cos[:, :1], sin[:, :1]), x[..., :1, :]
    )  # position 0


def test_rope_scores_depend_on_relative_position_only():
    head_dim = 32
    q, k = torch.randn(head_dim), torch.randn(head_dim)

    def score(m: int, n: int) -> torch.Tensor:
        cos, sin = rotary_cos_sin(torch.tensor([[m, n]]), head_dim, theta=10000.0)
        both = apply_rotary(torch.stack([q, k])[None, None], cos, sin)[0, 0]
        return both[0] @ both[1]

    reference = score(3, 10)
    for shift in (1, 17, 250):
        torch.testing.assert_close(score(3 + shift, 10 + shift), reference, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(score(3, 11), reference, atol=1e-3)  # a different offset does matter

    # No absolute positions anywhere: shifting every position id leaves the encoder's output unchanged.
    model = tiny_mlm()
    ids = random_ids(2, 8)
    positions = torch.arange(8)[None].expand(2, -1)
    torch.testing.assert_close(
        model.model(input_ids=ids, position_ids=positions + 40).last_hidden_state,
        model.model(input_ids=ids, position_ids=positions).last_hidden_state,
        atol=1e-4,
        rtol=1e-4,
    )


# --- 4. save_pretrained / Auto classes --------------------------------------------------------------
@pytest.mark.parametrize("tie", [True, False])
def test_save_and_load_through_the_auto_classes(tmp_path, tie):
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    assert register_auto_classes() is True  # idempotent: the import already registered them
    model = tiny_mlm(tie_word_embeddings=tie)
    model.save_pretrained(tmp_path)
    ids, mask = random_ids(2, 9), torch.tensor([[1] * 9, [1] * 5 + [0] * 4])

    assert type(AutoConfig.from_pretrained(tmp_path)) is NeoBERTConfig
    mlm = AutoModelForMaskedLM.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    assert type(mlm) is NeoBERTForMaskedLM
    assert (mlm.decoder.weight is mlm.model.encoder.weight) is tie
    torch.testing.assert_close(
        mlm(input_ids=ids, attention_mask=mask).logits,
        model(input_ids=ids, attention_mask=mask).logits,
        atol=0,
        rtol=0,
    )

    encoder = AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(encoder) is NeoBERTModel
    assert encoder.config._attn_implementation == "eager"
    torch.testing.assert_close(
        encoder(input_ids=ids, attention_mask=mask).last_hidden_state,
        model.model(input_ids=ids, attention_mask=mask).last_hidden_state,
        atol=1e-5,
        rtol=1e-5,
    )


# --- 5. the hook path ---------------------------------------------------------------------------------
def builtin_plugin_manager():
    """A plugin manager with every built-in of sec_cybert, registered as its entry points are."""
    import sec_cybert.default_plugins
    from sec_cybert.plugins.registry import new_plugin_manager

    pm = new_plugin_manager()
    for info in pkgutil.iter_modules(sec_cybert.default_plugins.__path__):
        pm.register(
            importlib.import_module(f"sec_cybert.default_plugins.{info.name}"), name=f"builtin-{info.name}"
        )
    return pm


def test_registry_lists_the_neobert_encoders_with_their_plugin(tmp_path):
    from sec_cybert.plugins.registry import Registry

    pm = builtin_plugin_manager()
    pm.register(neobert_plugin, name="neobert")
    registry = Registry.collect(pm)
    assert {"tiny-neobert", "neobert", "tiny-modernbert"} <= set(registry.names("encoder"))
    assert registry.get("encoder", "tiny-neobert").plugin == "neobert"
    assert registry.get("encoder", "tiny-modernbert").plugin == "builtin-encoders"
    assert registry.factory("encoder", "neobert")(tmp_path, []) == "chandar-lab/NeoBERT"


# --- 6. end to end through the library --------------------------------------------------------------
TOPICS = {
    "governance": "The board oversees cybersecurity risk through its audit committee and quarterly reports.",
    "incident": "We detected unauthorized access to our systems and notified customers and regulators.",
    "vendor": "Third-party providers are assessed before onboarding and monitored in yearly reviews.",
}


def write_paragraphs(path, n: int = 40) -> None:
    rng = random.Random(0)
    labels = list(TOPICS)
    with path.open("w") as handle:
        for i in range(n):
            label = labels[i % len(labels)]
            words = TOPICS[label].split()
            rng.shuffle(words)
            text = f"{TOPICS[label]} {' '.join(words[:6])}."
            handle.write(json.dumps({"id": f"p{i}", "text": text, "category": label}) + "\n")


def test_pipeline_runs_mlm_and_finetune_on_tiny_neobert(tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM

    from sec_cybert.host.pipeline import load_run_config

    data = tmp_path / "paragraphs.jsonl"
    write_paragraphs(data)
    pm = builtin_plugin_manager()
    pm.register(neobert_plugin, name="neobert")
    tiny_training = {
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1.0e-3,
        "logging_steps": 1,
        "save_strategy": "no",
    }
    config = {
        "encoder": "tiny-neobert",
        "encoder_options": {"vocab_size": 400, "max_position_embeddings": 128},
        "hardware": "cpu",
        "seed": 0,
        # One file for TAPT, training and evaluation: this test is about the plugin, not leakage.
        "contamination": {"pretraining": "warn", "finetune": "warn"},
        "stages": [
            {
                "kind": "mlm",
                "name": "tapt",
                "corpus": {"kind": "paragraphs", "path": str(data)},
                "chunker": {"kind": "paragraph", "max_length": 64},
                "masker": {"kind": "whole-word", "probability": 0.3},
                "validation_split": 0.1,
                "training": {**tiny_training, "max_steps": 3},
            },
            {
                "kind": "finetune",
                "name": "finetune",
                "train_file": str(data),
                "eval_file": str(data),
                "max_length": 64,
                "heads": [{"name": "category", "kind": "softmax", "labels": list(TOPICS)}],
                "training": {**tiny_training, "num_train_epochs": 1},
            },
        ],
    }
    pipeline = load_run_config(config, plugin_manager=pm).pipeline
    result = pipeline.run(tmp_path / "run")

    base = tmp_path / "run" / "base"
    assert result.lineage.base == str(base)
    assert json.loads((base / "config.json").read_text())["model_type"] == "neobert"
    tapt = result.variants[-1]
    assert tapt.name == "+TAPT"
    assert tapt.mlm_result.metrics["global_step"] == 3
    assert torch.isfinite(torch.tensor(tapt.mlm_result.metrics["eval_loss"]))
    assert type(AutoModelForMaskedLM.from_pretrained(tapt.checkpoint)) is NeoBERTForMaskedLM

    (finetuned,) = result.finetuned.values()
    assert finetuned.metrics["evaluated_on"] == "eval"
    assert 0.0 <= finetuned.metrics["category_accuracy"] <= 1.0
    assert type(AutoModel.from_pretrained(finetuned.output_dir)) is NeoBERTModel
    assert (finetuned.output_dir / "heads.json").is_file()

    # The factory reuses the base checkpoint on a re-run instead of training a new tokenizer.
    stamp = (base / "model.safetensors").stat().st_mtime_ns
    options = {"vocab_size": 400, "max_position_embeddings": 128}
    assert neobert_plugin.tiny_neobert(tmp_path / "run", iter(()), **options) == str(base)
    assert (base / "model.safetensors").stat().st_mtime_ns == stamp
    # ... and refuses to reuse it for other options.
    with pytest.raises(ConfigError, match="tiny-neobert built with other encoder_options"):
        neobert_plugin.tiny_neobert(tmp_path / "run", iter(()), **{**options, "hidden_size": 32})
