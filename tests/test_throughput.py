"""Token, real-token and FLOPs counting in training, and the rates training events carry."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import ModernBertForMaskedLM, TrainingArguments

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.planning.flops import EncoderShape, training_flops
from sec_cybert.stages.throughput import (
    CountingTrainer,
    TokenCounts,
    batch_counts,
    interval_rates,
    segment_lengths,
)
from sec_cybert.testing import builtin_plugin_manager, tiny_modernbert_config, tiny_pipeline_config

VOCAB, PAD = 128, 0


def _model(sparse: bool) -> ModernBertForMaskedLM:
    torch.manual_seed(0)
    config = tiny_modernbert_config(
        vocab_size=VOCAB, num_hidden_layers=3, intermediate_size=48, sparse_prediction=sparse, pad_token_id=PAD
    )
    return ModernBertForMaskedLM(config)


def test_segments_are_rows_or_packed_paragraphs():
    real = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    assert segment_lengths(real) == [4, 6]
    # Row 0 packs paragraphs of 3 and 1 tokens then padding; row 1 packs 2 + 4.
    positions = torch.tensor([[0, 1, 2, 0, 0, 0], [0, 1, 0, 1, 2, 3]])
    assert segment_lengths(real, positions) == [3, 1, 2, 4]


def test_batch_counts_padding_and_heads():
    shape = EncoderShape.from_config(_model(False).config)
    ids = torch.tensor([[5, 6, 7, 8, PAD, PAD], [5, 6, 7, 8, 9, 10]])
    labels = torch.full_like(ids, -100)
    labels[0, 1] = 6
    labels[1, 2:4] = 7
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}
    assert batch_counts(batch, pad_token_id=PAD, shape=shape, head="dense") == (
        12,
        10,
        training_flops(shape, [4, 6]),
    )
    assert batch_counts(batch, pad_token_id=PAD, shape=shape, head="sparse")[2] == training_flops(
        shape, [4, 6], predicted_tokens=3
    )
    # A packed batch's attention mask is a dict: padding is then the pad token.
    packed = {
        **batch,
        "attention_mask": {"full_attention": None},
        "position_ids": torch.tensor([[0, 1, 0, 1, 0, 0]] * 2),
    }
    tokens, real, flops = batch_counts(packed, pad_token_id=PAD, shape=shape, head="none")
    assert (tokens, real) == (12, 10)
    # Row 0: 2 + 2 then padding; row 1: 2 + 2 + 1 + 1 (each 0 starts a paragraph).
    assert flops == training_flops(shape, [2, 2, 2, 2, 1, 1], predicted_tokens=0)
    # Flash-attn's flattened batch names its segments.
    flat = {
        "input_ids": ids[ids != PAD].unsqueeze(0),
        "cu_seq_lens_q": torch.tensor([0, 3, 10], dtype=torch.int32),
    }
    assert batch_counts(flat, pad_token_id=PAD, shape=shape, head="none") == (
        10,
        10,
        training_flops(shape, [3, 7], predicted_tokens=0),
    )


def test_interval_rates():
    before, after = TokenCounts(100, 50, 10**12), TokenCounts(1100, 1020, 3 * 10**12)
    rates = interval_rates(before, after, 2.0, peak_flops=1e12, devices=2)
    assert rates == pytest.approx(
        {"tokens_per_second": 500.0, "real_tokens_per_second": 485.0, "padding_efficiency": 0.97, "mfu": 0.5}
    )
    assert "mfu" not in interval_rates(before, after, 2.0)  # no peak known (a CPU)
    assert interval_rates(after, after, 2.0) == {}


class _PadCollator:
    """Pads to the longest row; labels every other real token (a fixed, known target count)."""

    def __call__(self, features):
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), PAD)
        for i, f in enumerate(features):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        labels = torch.where(ids != PAD, ids, -100)
        labels[:, 1::2] = -100
        return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}


@pytest.mark.parametrize("sparse", [False, True])
def test_counting_trainer_counts_what_it_trains_on(tmp_path, sparse):
    lengths = [10, 4, 7, 7, 3, 9]
    rows = [{"input_ids": list(range(5, 5 + n))} for n in lengths]
    counts = TokenCounts()
    model = _model(sparse)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_steps=3,
        use_cpu=True,
        report_to="none",
        include_num_input_tokens_seen="no",
        remove_unused_columns=False,
        train_sampling_strategy="sequential",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = CountingTrainer(
        counts=counts, model=model, args=args, train_dataset=rows, data_collator=_PadCollator()
    )
    trainer.train()
    batches = [lengths[i : i + 2] for i in range(0, 6, 2)]
    shape = EncoderShape.from_config(model.config)
    # Labels on even positions: ceil(n / 2) targets in a row of n real tokens.
    predicted = [sum((n + 1) // 2 for n in b) for b in batches]
    flops = sum(
        training_flops(shape, b, predicted_tokens=p if sparse else None)
        for b, p in zip(batches, predicted, strict=True)
    )
    assert counts == TokenCounts(
        tokens=sum(2 * max(b) for b in batches), real_tokens=sum(lengths), flops=flops
    )
    assert trainer.state.num_input_tokens_seen == sum(lengths)


def _tapt_events(tmp_path, tiny_corpus, chunker):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][1:]  # TAPT only
    config["stages"][0]["chunker"] = chunker
    load_run_config(config, plugin_manager=builtin_plugin_manager()).pipeline.run(tmp_path)
    lines = (tmp_path / "tapt" / "training-log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_training_events_carry_both_rates(tmp_path, tiny_corpus):
    logs = _tapt_events(tmp_path / "paragraph", tiny_corpus, {"kind": "paragraph", "max_length": 64})
    rated = [e for e in logs if e["event"] == "log" and "tokens_per_second" in e]
    assert rated, logs
    for event in rated:
        assert 0 < event["real_tokens_per_second"] <= event["tokens_per_second"]
        assert event["padding_efficiency"] == pytest.approx(
            event["real_tokens_per_second"] / event["tokens_per_second"]
        )
        assert "mfu" not in event  # no peak is known for a CPU
    seen = [e["tokens_seen"] for e in logs if e["event"] == "log"]
    assert seen == sorted(seen) and seen[-1] > 0
    # Packed rows carry a dict of attention masks, which the Trainer's own count cannot sum.
    packed = _tapt_events(tmp_path / "packed", tiny_corpus, {"kind": "packed", "max_length": 64})
    packed_rated = [e for e in packed if e["event"] == "log" and "padding_efficiency" in e]
    assert packed_rated
    assert all(0 < e["real_tokens_per_second"] <= e["tokens_per_second"] for e in packed_rated)
    assert [e["tokens_seen"] for e in packed if e["event"] == "log"][-1] > 0
