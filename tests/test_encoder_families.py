"""Any AutoModelForMaskedLM checkpoint trains through the MLM stage: tiny ModernBERT, BERT, DeBERTa-v2/v3.

Each family gets the tokenizer family it ships with (byte-level BPE, WordPiece, SentencePiece
Unigram), trained on the fly, and a random-init model built from its config: no downloads.
"""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoModelForMaskedLM, PreTrainedTokenizerFast

from sec_cybert.host.pipeline import load_run_config
from sec_cybert.testing import TINY_TRAINING, labeled_paragraphs

SPECIALS = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]", "unk_token": "[UNK]"}


def _texts():
    return [r["text"] for r in labeled_paragraphs(2, 5)]


def _wordpiece():
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(_texts(), trainers.WordPieceTrainer(vocab_size=400, special_tokens=list(SPECIALS.values())))
    return tokenizer


def _unigram():
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(
        _texts(), trainers.UnigramTrainer(vocab_size=400, special_tokens=list(SPECIALS.values()), unk_token="[UNK]")
    )
    return tokenizer


def _wrap(tokenizer):
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=128, **SPECIALS)


def _bert(vocab, tok):
    from transformers import BertConfig, BertForMaskedLM

    return BertForMaskedLM(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id))


def _deberta(vocab, tok):
    from transformers import DebertaV2Config, DebertaV2ForMaskedLM

    return DebertaV2ForMaskedLM(
        DebertaV2Config(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id, relative_attention=True, position_buckets=32, pos_att_type=["p2c", "c2p"])
    )


@pytest.mark.parametrize(("family", "tokenizer_factory", "model_factory"), [("bert-wordpiece", _wordpiece, _bert), ("deberta-v2-unigram", _unigram, _deberta)])
def test_mlm_stage_trains_other_encoder_families(family, tokenizer_factory, model_factory, tmp_path, tiny_corpus, plugin_manager):
    tokenizer = _wrap(tokenizer_factory())
    base = tmp_path / family
    model_factory(len(tokenizer), tokenizer).save_pretrained(base)
    tokenizer.save_pretrained(base)
    config = {
        "encoder": str(base),
        "hardware": "cpu",
        "stages": [
            {
                "kind": "mlm",
                "name": "tapt",
                "corpus": {"kind": "paragraphs", "path": str(tiny_corpus.paragraphs)},
                "chunker": {"kind": "paragraph", "max_length": 64},
                "masker": {"kind": "whole-word", "probability": 0.3, "mask_replace_prob": 0.8, "random_replace_prob": 0.1},
                "training": {**TINY_TRAINING, "attn_implementation": "eager"},
            }
        ],
    }
    result = load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    out = result.variants[-1].checkpoint
    assert type(AutoModelForMaskedLM.from_pretrained(out)).__name__ == type(model_factory(8, tokenizer)).__name__
    metrics = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())["metrics"]
    assert metrics["global_step"] == 3 and metrics["eval_loss"] > 0
