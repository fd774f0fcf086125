"""Sequence packing: rows of whole paragraphs that compute exactly what the paragraphs do alone.

The numerical proof runs a tiny ModernBERT (fp32, CPU, no dropout) whose local window is smaller
than the paragraphs and which has both global and local layers, under sdpa and eager: a packed,
padded batch gives every target the same cross-entropy, and the model the same gradients, as
the paragraphs run one at a time; so do DAPT blocks with ``document_attention`` (which may
start inside a document) against their documents' pieces. Then the packing itself (deterministic, lossless, within
``max_length``, efficient on Item 1C-like lengths), masking on packed rows, the flash-attn
batch against transformers' own flattening collator, and an MLM stage trained and scored on
packed rows through the HF Trainer.
"""

from __future__ import annotations

import json
from collections import Counter

import attrs
import datasets
import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    DataCollatorWithFlattening,
    DebertaV2Config,
    DebertaV2ForMaskedLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
)

from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.datapath.collator import MaskingCollator, premask
from sec_cybert.datapath.document_attention import DocumentAttention, segment_ids
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker, WholeWordMasker
from sec_cybert.datapath.packing import PackingChunker, pack_lengths, padding_efficiency
from sec_cybert.errors import ConfigError, DataError
from sec_cybert.testing import (
    PARAGRAPH_WORDS,
    TINY_ENCODER_OPTIONS,
    TINY_TRAINING,
    document_spans,
    each_document_alone,
    loss_of_each_document_alone,
    packed_and_alone_logits,
    packing_tokenizer,
    premasked_rows,
    random_paragraphs,
    requires_gpu,
    token_losses,
    write_jsonl,
)


@pytest.fixture(scope="module")
def tokenizer():
    return packing_tokenizer()


@pytest.fixture(scope="module")
def tokenized(tokenizer):
    documents = datasets.Dataset.from_dict({"text": random_paragraphs(16, seed=2, low=2, high=12)})
    return PackingChunker(max_length=96).tokenize(documents, tokenizer)


def _segments(row: dict) -> list[tuple[list[int], list[int], list[int]]]:
    """A packed row cut where its positions restart: (input_ids, word_ids, position_ids) each."""
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["input_ids"])]
    return [
        tuple(row[key][a:b] for key in ("input_ids", "word_ids", "position_ids"))
        for a, b in zip(starts, starts[1:], strict=False)
    ]


def _model(tokenizer, implementation: str, **overrides) -> ModernBertForMaskedLM:
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        # a 9-token window (|q - k| <= 4), far shorter than the paragraphs: the local mask matters
        local_attention=8,
        global_attn_every_n_layers=2,  # layers: global, local, global
        initializer_range=0.2,  # 10x the default: attention far from uniform, so leaks would show
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        attn_implementation=implementation,
        **overrides,
    )
    return ModernBertForMaskedLM(config).eval()


# ------------------------------------------------------------------------------ the numerical proof


def _dapt_blocks(tokenizer) -> datasets.Dataset:
    """DAPT blocks with document attention: documents concatenated and cut every 60 tokens, so a
    block may start inside a document (its positions restart at the block's start)."""
    chunker = ConcatChunker(seq_len=60, word_ids=True, document_attention=True)
    documents = datasets.Dataset.from_dict({"text": random_paragraphs(16, seed=2, low=2, high=12)})
    return chunker.group(chunker.tokenize(documents, tokenizer))


@pytest.mark.parametrize("rows_of", ["packed paragraphs", "dapt blocks"])
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_a_packed_batch_computes_what_its_paragraphs_compute_alone(tokenizer, tokenized, implementation, rows_of):
    if rows_of == "packed paragraphs":
        rows = PackingChunker(max_length=96).group(tokenized)
    else:
        rows = _dapt_blocks(tokenizer)
        assert any(row["input_ids"][0] != tokenizer.cls_token_id for row in rows)  # a block starts mid-document
    assert len(rows) >= 3 and max(len(_segments(r)) for r in rows) >= 3  # several paragraphs a row
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=0)
    model = _model(tokenizer, implementation)
    attention = DocumentAttention.from_config(model.config)
    assert (attention.implementation, attention.sliding_window) == (implementation, 4)
    # A multiple of 16 pads every row, the longest too: padding is in the batch.
    batch = MaskingCollator(
        tokenizer=tokenizer, masker=TokenMasker(), pad_to_multiple_of=16, attention=attention
    )(features)
    assert set(batch) == {"input_ids", "attention_mask", "position_ids", "labels"}
    assert set(batch["attention_mask"]) == {"full_attention", "sliding_attention"}
    lengths = [len(f["input_ids"]) for f in features]
    assert min(lengths) < batch["input_ids"].shape[1] and max(lengths) < batch["input_ids"].shape[1]

    # Reference: each paragraph alone, in its own batch of one, with the model's own masks.
    expected, reference_logits, reference_grads = each_document_alone(
        model, features, lambda ids: model(input_ids=torch.tensor([ids])).logits[0]
    )

    # Packed, dense logits: every target's loss, in row-major order (paragraph by paragraph).
    model.zero_grad()
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    assert torch.isfinite(out.logits).all()  # padding queries too: none is fully masked
    labels = batch["labels"]
    targets = labels != IGNORE_INDEX
    packed = token_losses(out.logits[targets], labels[targets])
    torch.testing.assert_close(packed, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.logits[targets], reference_logits, rtol=0, atol=1e-5)
    packed.sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == reference_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference_grads[name], rtol=1e-4, atol=1e-5, msg=name)

    # The sparse path (the stage's default) decodes the targets only: the same per-token losses.
    model.sparse_prediction = True
    sparse = model(**batch)
    torch.testing.assert_close(token_losses(sparse.logits, labels[targets]), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(sparse.loss, expected.mean(), rtol=0, atol=1e-6)

    # The test can fail: the same rows with one 2D mask (attention across paragraphs) differ.
    model.sparse_prediction = False
    leaky = model(
        input_ids=batch["input_ids"], attention_mask=(batch["input_ids"] != tokenizer.pad_token_id).long()
    )
    assert (token_losses(leaky.logits[targets], labels[targets]) - expected).abs().max() > 1e-1


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_masks_never_cross_a_boundary_and_no_query_row_is_empty(tokenizer, tokenized, implementation):
    rows = PackingChunker(max_length=96).group(tokenized)
    features = [{"input_ids": r["input_ids"], "position_ids": r["position_ids"]} for r in rows]
    attention = DocumentAttention(implementation=implementation, sliding_window=4)
    batch = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), seed=0, attention=attention)(features)
    masks = batch["attention_mask"]
    if implementation == "sdpa":
        allowed = {kind: mask.bool() for kind, mask in masks.items()}
        assert all(mask.dtype == torch.bool for mask in masks.values())
    else:
        assert all(mask.dtype == torch.float32 for mask in masks.values())
        assert set(torch.unique(masks["full_attention"]).tolist()) == {0.0, torch.finfo(torch.float32).min}
        allowed = {kind: mask == 0 for kind, mask in masks.items()}
    segments = segment_ids(batch["position_ids"])
    same = segments[:, :, None] == segments[:, None, :]
    width = batch["input_ids"].shape[1]
    near = (torch.arange(width)[:, None] - torch.arange(width)[None, :]).abs() <= 4
    assert torch.equal(allowed["full_attention"][:, 0], same)
    assert torch.equal(allowed["sliding_attention"][:, 0], same & near)
    assert allowed["sliding_attention"][:, 0].any(-1).all()  # every query sees itself at least
    # Padding restarts the positions, so it is a segment of its own.
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        assert batch["position_ids"][row, :n].tolist() == f["position_ids"]
        assert batch["position_ids"][row, n:].tolist() == list(range(width - n))


# ------------------------------------------------------------------------------------ the packing


def test_packing_is_lossless_bounded_and_deterministic(tokenizer, tokenized):
    chunker = PackingChunker(max_length=96)
    rows = chunker.group(tokenized)
    assert rows.column_names == ["input_ids", "word_ids", "position_ids"]
    assert chunker.group(tokenized).to_dict() == rows.to_dict()
    assert all(len(r["input_ids"]) <= 96 for r in rows)
    assert len(rows) < len(tokenized)
    packed = Counter()
    for row in rows:
        assert len(row["word_ids"]) == len(row["position_ids"]) == len(row["input_ids"])
        seen_words: set[int] = set()
        for ids, words, positions in _segments(row):
            packed[tuple(ids)] += 1
            assert positions == list(range(len(ids)))
            assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
            own = {w for w in words if w >= 0}
            assert not own & seen_words  # word ids never shared across paragraphs of a row
            seen_words |= own
    # Every paragraph's tokens exactly once, and each paragraph's word pattern kept.
    assert packed == Counter(tuple(ids) for ids in tokenized["input_ids"])
    assert sum(len(r["input_ids"]) for r in rows) == sum(tokenized["n_tokens"])


def test_tokenize_is_the_paragraph_chunkers(tokenizer):
    long = "Paragraph. " + " ".join(list(PARAGRAPH_WORDS) * 8)
    documents = datasets.Dataset.from_dict({"text": [*random_paragraphs(4, seed=3, low=4, high=40), long]})
    packed = PackingChunker(max_length=32).tokenize(documents, tokenizer)
    plain = ParagraphChunker(max_length=32).tokenize(documents, tokenizer)
    assert packed.to_dict() == plain.to_dict()
    assert packed["tokens_truncated"][-1] > 0 and packed["n_tokens"][-1] == 32


def test_a_selection_of_rows_packs_only_those(tokenizer, tokenized):
    picked = tokenized.select([1, 4, 6])
    rows = PackingChunker(max_length=96).group(picked)
    assert Counter(tuple(s[0]) for r in rows for s in _segments(r)) == Counter(
        tuple(ids) for ids in picked["input_ids"]
    )


def test_best_fit_decreasing_fills_rows():
    assert pack_lengths([5, 3, 8, 2, 6], 10) == [[2, 3], [4, 1], [0]]
    assert pack_lengths([], 10) == []
    with pytest.raises(ValueError, match="1..10"):
        pack_lengths([11], 10)


def test_padding_efficiency_on_item_1c_lengths():
    """Lognormal lengths fitted to Item 1C (mean ~127 tokens, P99 ~386), cut at 512: packed rows,
    shuffled and batched 8 at a time as the packed TAPT config trains, each batch padded to its
    longest row, compute >= 97 % real tokens; one paragraph a row, batched 32, ~40 %."""
    rng = np.random.default_rng(0)
    lengths = np.clip(np.round(rng.lognormal(mean=4.698, sigma=0.541, size=4000)), 3, 512).astype(int)
    assert 120 < lengths.mean() < 135 and 350 < np.percentile(lengths, 99) < 420
    tokenized = datasets.Dataset.from_dict(
        {
            "input_ids": [np.full(n, 7) for n in lengths],
            "word_ids": [np.r_[-1, np.arange(n - 2), -1] for n in lengths],
        }
    )
    rows = PackingChunker(max_length=512).group(tokenized)
    row_lengths = np.array([len(ids) for ids in rows["input_ids"]])
    assert row_lengths.max() <= 512 and row_lengths.sum() == lengths.sum()
    packed = padding_efficiency(rng.permutation(row_lengths), batch_size=8)
    one_per_row = padding_efficiency(rng.permutation(lengths), batch_size=32)
    assert packed >= 0.97
    assert one_per_row < 0.5
    assert row_lengths.mean() / 512 > 0.99  # rows are full; the rest is the last rows


# ------------------------------------------------------------------------ masking on packed rows


def test_whole_word_masking_never_crosses_a_boundary(tokenizer, tokenized):
    rows = PackingChunker(max_length=96).group(tokenized)
    features = [dict(r, row=i) for i, r in enumerate(rows)]
    collator = MaskingCollator(
        tokenizer=tokenizer,
        masker=WholeWordMasker(probability=0.5),
        seed=3,
        attention=DocumentAttention(implementation="sdpa", sliding_window=4),
    )
    batch = collator(features)
    assert (batch["labels"] != IGNORE_INDEX).any()
    for i, row in enumerate(rows):
        targets = (batch["labels"][i, : len(row["input_ids"])] != IGNORE_INDEX).tolist()
        segment = segment_ids(torch.tensor([row["position_ids"]]))[0].tolist()
        by_word: dict[int, set] = {}
        for word, target, seg in zip(row["word_ids"], targets, segment, strict=True):
            if word >= 0:
                by_word.setdefault(word, set()).add((target, seg))
        # each word lies in one paragraph and is masked whole or not at all
        assert all(len(states) == 1 for states in by_word.values())


def test_packed_masks_are_row_seeded_and_reproducible(tokenizer, tokenized):
    rows = PackingChunker(max_length=96).group(tokenized)
    features = [dict(r, row=i) for i, r in enumerate(rows)]
    attention = DocumentAttention(implementation="eager", sliding_window=4)

    def collate(epoch):
        c = MaskingCollator(
            tokenizer=tokenizer, masker=WholeWordMasker(probability=0.3), seed=5, attention=attention
        )
        c.epoch = epoch
        return c(features)

    first, again, later = collate(0), collate(0), collate(1)
    assert torch.equal(first["input_ids"], again["input_ids"]) and torch.equal(
        first["labels"], again["labels"]
    )
    assert not torch.equal(first["labels"], later["labels"])
    assert torch.equal(
        first["attention_mask"]["sliding_attention"], later["attention_mask"]["sliding_attention"]
    )


def test_premask_keeps_the_positions(tokenizer, tokenized):
    rows = PackingChunker(max_length=96).group(tokenized)
    masked = premask(rows, tokenizer, WholeWordMasker(probability=0.3), seed=0)
    assert set(masked.column_names) == {"input_ids", "labels", "position_ids"}
    assert masked["position_ids"] == rows["position_ids"]
    batch = MaskingCollator(
        tokenizer=tokenizer, masker=TokenMasker(), attention=DocumentAttention("sdpa", 4)
    )(list(masked))
    assert batch["labels"].shape == batch["position_ids"].shape and isinstance(batch["attention_mask"], dict)


def test_packed_features_need_the_attention_and_all_positions(tokenizer, tokenized):
    rows = PackingChunker(max_length=96).group(tokenized)
    features = [dict(r) for r in rows]
    with pytest.raises(DataError, match="no `attention`"):
        MaskingCollator(tokenizer=tokenizer, masker=TokenMasker())(features)
    attention = DocumentAttention(implementation="sdpa", sliding_window=4)
    features[0] = {k: v for k, v in features[0].items() if k != "position_ids"}
    with pytest.raises(DataError, match="have no `position_ids`"):
        MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)(features)
    short = [dict(rows[1], position_ids=rows[1]["position_ids"][:-1])]
    with pytest.raises(DataError, match="one position per token"):
        MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)(short)


# ---------------------------------------------------------------------------- flash-attn varlen batch


def test_the_flash_batch_is_transformers_flattening_of_the_paragraphs(tokenizer, tokenized):
    rows = PackingChunker(max_length=96).group(tokenized)
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=1)
    attention = DocumentAttention(implementation="flash_attention_2", sliding_window=4)
    batch = MaskingCollator(
        tokenizer=tokenizer, masker=TokenMasker(), pad_to_multiple_of=16, attention=attention
    )(features)
    paragraphs = [
        {"input_ids": f["input_ids"][a:b], "labels": f["labels"][a:b]}
        for f in features
        for a, b in document_spans(f["position_ids"])
    ]
    theirs = DataCollatorWithFlattening(return_flash_attn_kwargs=True)(paragraphs)
    assert set(batch) == {
        "input_ids",
        "labels",
        "position_ids",
        "cu_seq_lens_q",
        "cu_seq_lens_k",
        "max_length_q",
        "max_length_k",
    }
    for key in ("input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k"):
        assert batch[key].dtype == theirs[key].dtype and torch.equal(batch[key], theirs[key]), key
    assert batch["max_length_q"] == batch["max_length_k"] == theirs["max_length_q"]
    # Our labels are MLM labels, already -100 at each [CLS]: no causal separator to add.
    assert batch["labels"][0].tolist() == [label for p in paragraphs for label in p["labels"]]


def test_a_row_boundary_is_a_segment_boundary_when_flattened(tokenizer):
    attention = DocumentAttention(implementation="flash_attention_2")
    # A DAPT block may continue the previous block's positions: the rows stay separate sequences.
    features = [
        {"input_ids": [5, 6, 7], "labels": [-100, 6, -100], "position_ids": [0, 1, 2]},
        {"input_ids": [8, 9], "labels": [8, -100], "position_ids": [3, 4]},
    ]
    batch = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)(features)
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5] and batch["max_length_q"] == 3


def test_the_packed_and_alone_helper_of_the_gpu_tests_agrees_on_the_cpu(tokenizer, tokenized):
    """``packed_and_alone_logits`` (what the flash tests compare on a GPU) on the CPU's sdpa path."""
    rows = PackingChunker(max_length=96).group(tokenized)
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=2)[:1]  # one row: the helper reads row 0's logits
    model = _model(tokenizer, "sdpa").eval()
    collate = MaskingCollator(
        tokenizer=tokenizer, masker=TokenMasker(), attention=DocumentAttention.from_config(model.config)
    )
    packed, alone = packed_and_alone_logits(model, collate, features, "cpu")
    assert len(document_spans(features[0]["position_ids"])) >= 2
    torch.testing.assert_close(packed, alone, rtol=1e-4, atol=1e-4)


@requires_gpu
def test_the_flash_path_matches_paragraphs_alone_on_a_gpu(tokenizer, tokenized):
    from sec_cybert.core.hardware import flash_attn_installed

    if not flash_attn_installed():
        pytest.skip("flash-attn is not installed")
    rows = PackingChunker(max_length=96).group(tokenized)
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=2)
    model = _model(tokenizer, "sdpa").to("cuda", torch.bfloat16)
    model.set_attn_implementation("flash_attention_2")  # on the GPU, in bf16: what flash-attn needs
    attention = DocumentAttention.from_config(model.config)
    assert attention.flattens
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)
    packed, alone = packed_and_alone_logits(model, collate, features, "cuda")
    torch.testing.assert_close(packed.float(), alone.float(), rtol=1.6e-2, atol=2e-2)  # bf16 kernels


# ------------------------------------------------------------------------ which encoders can pack


def test_only_architectures_that_take_document_masks_can_pack():
    config = ModernBertConfig(local_attention=128, global_attn_every_n_layers=3, num_hidden_layers=3)
    config._attn_implementation = "eager"
    assert DocumentAttention.from_config(config) == DocumentAttention("eager", 64, "float32")
    assert DocumentAttention.from_config(config, implementation="flash_attention_2").flattens
    only_global = ModernBertConfig(num_hidden_layers=2, global_attn_every_n_layers=1)
    assert DocumentAttention.from_config(only_global, implementation="sdpa").sliding_window is None
    # BERT and the encoders built like it take one 4D mask (tests/test_bert_packing.py).
    bert = DocumentAttention.from_config(BertConfig(name_or_path="bert-tiny"))
    assert (bert.per_layer_kind, bert.sliding_window, bert.max_positions) == (False, None, 512)
    with pytest.raises(ConfigError, match=r"deberta-tiny \(deberta-v2\).*`paragraph` chunker.*bert"):
        DocumentAttention.from_config(DebertaV2Config(name_or_path="deberta-tiny"))
    with pytest.raises(ConfigError, match="flex_attention"):
        DocumentAttention.from_config(config, implementation="flex_attention")


# ------------------------------------------------------------------------------ an MLM stage, packed


def _packed_config(paragraphs, **stage):
    return {
        "encoder": "tiny-modernbert",
        # three layers: a global, then two local ones (global_attn_every_n_layers is 3)
        "encoder_options": {**TINY_ENCODER_OPTIONS, "num_hidden_layers": 3},
        "hardware": "cpu",
        "seed": 11,
        "stages": [
            {
                "kind": "mlm",
                "name": "tapt",
                "corpus": {"kind": "paragraphs", "path": str(paragraphs)},
                "chunker": {"kind": "packed", "max_length": 64},
                "masker": {"kind": "whole-word", "probability": 0.3},
                "validation_split": 0.2,
                "training": {**TINY_TRAINING, "per_device_train_batch_size": 2, "save_strategy": "no"},
                **stage,
            }
        ],
    }


@pytest.fixture
def paragraphs_file(tmp_path):
    records = [
        {"id": f"p{i}", "text": text, "metadata": {"cik": str(i), "filing_date": f"2024-01-{i + 1:02d}"}}
        for i, text in enumerate(random_paragraphs(24, seed=4, low=3, high=14))
    ]
    return write_jsonl(tmp_path / "paragraphs.jsonl", records)


def test_an_mlm_stage_trains_and_scores_packed_rows(tmp_path, paragraphs_file, plugin_manager, monkeypatch):
    import transformers

    from sec_cybert.core.hardware import cpu_profile
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.stages.mlm_evaluation import masked_lm_loss

    seen = []
    original = transformers.Trainer.compute_loss

    def compute_loss(self, model, inputs, *args, **kwargs):
        masks = inputs["attention_mask"]
        seen.append(
            (
                type(masks).__name__,
                sorted(masks),
                {m.device for m in masks.values()} | {inputs["position_ids"].device},
                self.args.device,
                inputs["input_ids"].shape[1],
            )
        )
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "compute_loss", compute_loss)
    training = {
        **TINY_TRAINING,
        "per_device_train_batch_size": 2,
        "save_strategy": "no",
        "pad_to_multiple_of": 24,
    }
    run = load_run_config(_packed_config(paragraphs_file, training=training), plugin_manager=plugin_manager)
    run.pipeline.run(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())
    assert record["report"]["train_blocks"] < record["report"]["train"]["documents"]  # rows hold several
    assert np.isfinite(record["metrics"]["eval_loss"]) and np.isfinite(record["metrics"]["train_loss"])
    assert seen and all(
        kind == "dict" and keys == ["full_attention", "sliding_attention"] for kind, keys, *_ in seen
    )
    # _prepare_inputs moved the dict's masks to the Trainer's device like every other input
    assert all(devices == {device} for _, _, devices, device, _ in seen)
    assert all(width % 24 == 0 for *_, width in seen)  # training.pad_to_multiple_of reached the collator

    # The kept validation set is packed and premasked: masked_lm_loss scores it with its
    # boundaries, as the paragraphs would score alone.
    validation = datasets.load_from_disk(str(tmp_path / "run" / "tapt" / "validation-set"))
    assert "position_ids" in validation.column_names
    checkpoint = str(tmp_path / "run" / "tapt")
    scored = masked_lm_loss(checkpoint, validation, profile=cpu_profile())
    alone, targets = loss_of_each_document_alone(checkpoint, validation)
    assert targets and scored == pytest.approx(alone, rel=1e-5)


def test_an_encoder_that_cannot_pack_is_refused_before_the_corpus_is_read(
    tmp_path, paragraphs_file, plugin_manager, monkeypatch
):
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.stages.mlm import MLMStage

    def prepare_data(*args, **kwargs):
        raise AssertionError("the corpus was read before the encoder was checked")

    monkeypatch.setattr(MLMStage, "prepare_data", prepare_data)

    tokenizer = train_bpe_tokenizer(random_paragraphs(20, seed=5, low=4, high=40), vocab_size=300, model_max_length=128)
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    deberta = tmp_path / "tiny-deberta"
    DebertaV2ForMaskedLM(config).save_pretrained(deberta)
    tokenizer.save_pretrained(deberta)
    data = _packed_config(paragraphs_file)
    data["encoder"] = str(deberta)
    del data["encoder_options"]
    run = load_run_config(data, plugin_manager=plugin_manager)
    with pytest.raises(
        ConfigError, match=r"tiny-deberta \(deberta-v2\) cannot keep packed documents apart.*`paragraph` chunker"
    ):
        run.pipeline.run(tmp_path / "run")


def test_the_shipped_packed_tapt_config_is_the_reference_tapt_with_packing(tiny_corpus, plugin_manager):
    from sec_cybert.host.config import load_yaml, resolve_config_path
    from sec_cybert.host.pipeline import load_run_config

    def stage(name):
        data = load_yaml(resolve_config_path(f"configs/tapt/{name}"))
        data["stages"][0]["corpus"]["path"] = str(tiny_corpus.paragraphs)
        return load_run_config(data, plugin_manager=plugin_manager).pipeline.stages[0]

    packed, reference = stage("modernbert-packed.yaml"), stage("modernbert.yaml")
    assert packed.chunker == PackingChunker(max_length=512)
    # ~4 paragraphs a row: 8 rows a step carry the tokens of the reference's 32 paragraphs.
    assert (packed.training.per_device_train_batch_size, packed.training.gradient_accumulation_steps) == (
        8,
        1,
    )
    # Everything else is the reference TAPT's.
    training = attrs.evolve(reference.training, per_device_train_batch_size=8)
    assert attrs.evolve(reference, chunker=packed.chunker, training=training) == packed


# ------------------------------------------------------------------ the fallback when packing is off


def test_group_by_length_hands_the_trainer_a_length_grouped_sampler(tmp_path, tokenizer, tokenized):
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from sec_cybert.core.hardware import cpu_profile
    from sec_cybert.stages.training import Training

    rows = ParagraphChunker(max_length=96).group(tokenized)
    training = Training(per_device_train_batch_size=4, gradient_accumulation_steps=1, group_by_length=True)
    args = training.trainer_arguments(tmp_path, training.runtime(cpu_profile()), seed=0, has_eval=False)
    trainer = Trainer(model=_model(tokenizer, "sdpa"), args=args, train_dataset=rows)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    assert sampler.lengths == [len(ids) for ids in rows["input_ids"]]  # it reads our input_ids
    first_batch = list(sampler)[:4]
    assert max(sampler.lengths) in [sampler.lengths[i] for i in first_batch]  # longest batch first
    plain = Training().trainer_arguments(tmp_path, training.runtime(cpu_profile()), seed=0, has_eval=False)
    assert plain.train_sampling_strategy == "random"


def test_batches_are_padded_to_a_multiple_of_8_on_cuda_only_unless_set():
    from sec_cybert.core.hardware import cpu_profile
    from sec_cybert.stages.training import Training

    cpu = Training().runtime(cpu_profile())
    cuda = attrs.evolve(cpu, device="cuda")
    assert (Training().padding_multiple(cpu), Training().padding_multiple(cuda)) == (None, 8)
    assert Training(pad_to_multiple_of=64).padding_multiple(cpu) == 64
    assert Training(pad_to_multiple_of=1).padding_multiple(cuda) == 1
    with pytest.raises(ValueError):
        Training(pad_to_multiple_of=0)
