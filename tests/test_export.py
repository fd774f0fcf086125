"""export_head: one head of a fine-tuned directory as a plain AutoModelForSequenceClassification
checkpoint whose logits are the head's (fp32), loadable without sec_cybert."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from sec_cybert.errors import DataError
from sec_cybert.sharing.export import export_head
from sec_cybert.stages.classifier import MultiHeadClassifier, decode, ordinal_predictions
from sec_cybert.stages.heads import Head

TEXTS = [
    "The audit committee of the board oversees cybersecurity risk and receives quarterly briefings.",
    "Our CISO leads the security team.",
    "We assess vulnerabilities.",
]
HEADS = (
    Head(name="category", labels=("Board", "Management", "Process", "Other")),
    Head(name="specificity", labels=("Generic", "Sector", "Firm", "Quantified"), kind="coral"),
    Head(name="levels", labels=("low", "mid", "high"), kind="thresholds"),
    Head(name="topics", labels=("vendors", "incidents", "insurance"), kind="multilabel"),
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny random-init ModernBERT with a tokenizer trained on a few sentences."""
    from sec_cybert.core.encoders import tiny_modernbert

    work = tmp_path_factory.mktemp("export-base")
    options = dict(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    return tiny_modernbert(work, TEXTS * 20, max_position_embeddings=128, **options)


def finetuned(base, directory, *, pooling="cls", norm_bias=False, heads=HEADS, seed=0):
    """A fine-tuned directory whose weights are far from their initialisation: the encoder's final
    norm has weights other than 1 (and biases other than 0), so no part of the mapping is trivial."""
    torch.manual_seed(seed)
    encoder = AutoModel.from_pretrained(base, norm_bias=norm_bias)
    model = MultiHeadClassifier(encoder, heads, pooling=pooling)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        encoder.final_norm.weight.copy_(1 + 0.5 * torch.randn_like(encoder.final_norm.weight))
        if encoder.final_norm.bias is not None:
            encoder.final_norm.bias.copy_(0.3 * torch.randn_like(encoder.final_norm.bias))
        for head in model.heads.values():
            for parameter in head.parameters():
                parameter.copy_(torch.randn_like(parameter))
    model.save(directory, AutoTokenizer.from_pretrained(base))
    return directory


def logits_of(directory, exported, head_name):
    tokenizer = AutoTokenizer.from_pretrained(exported)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)  # padded rows: the mean must skip padding
    assert not bool(batch["attention_mask"].all())
    classifier = MultiHeadClassifier.load(directory)
    model = AutoModelForSequenceClassification.from_pretrained(exported).eval()
    with torch.no_grad():
        expected = classifier(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        got = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return classifier, model, expected[f"logits_{head_name}"], got


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("norm_bias", [False, True])
def test_an_exported_softmax_head_gives_the_same_logits(base, tmp_path, pooling, norm_bias):
    source = finetuned(base, tmp_path / "finetune", pooling=pooling, norm_bias=norm_bias)
    out = export_head(source, "category", tmp_path / "category")
    _, model, expected, got = logits_of(source, out, "category")
    assert type(model).__name__ == "ModernBertForSequenceClassification"
    assert expected.dtype == got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
    assert model.config.id2label == dict(enumerate(HEADS[0].labels))
    assert model.config.label2id == {label: i for i, label in enumerate(HEADS[0].labels)}
    assert model.config.problem_type == "single_label_classification"
    assert model.config.classifier_pooling == pooling
    assert torch.equal(got.argmax(-1), decode(HEADS[0], expected))


@pytest.mark.parametrize("head_name", ["specificity", "levels"])
def test_an_ordinal_head_exports_as_its_thresholds(base, tmp_path, head_name):
    source = finetuned(base, tmp_path / "finetune", pooling="mean")
    out = export_head(source, head_name, tmp_path / head_name)
    _, model, expected, got = logits_of(source, out, head_name)
    head = next(h for h in HEADS if h.name == head_name)
    assert got.shape[-1] == len(head.labels) - 1
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(ordinal_predictions(got), ordinal_predictions(expected))
    assert model.config.problem_type == "multi_label_classification"
    assert list(model.config.id2label.values()) == [f">= {label}" for label in head.labels[1:]]
    assert model.config.sec_cybert_head["labels"] == list(head.labels)
    assert model.config.sec_cybert_head["kind"] == head.kind


def test_a_multilabel_head_exports_with_its_labels(base, tmp_path):
    source = finetuned(base, tmp_path / "finetune")
    out = export_head(source, "topics", tmp_path / "topics")
    _, model, expected, got = logits_of(source, out, "topics")
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert model.config.problem_type == "multi_label_classification"
    assert list(model.config.id2label.values()) == ["vendors", "incidents", "insurance"]


@pytest.mark.slow
def test_a_fresh_process_loads_the_export_with_transformers_alone(base, tmp_path):
    source = finetuned(base, tmp_path / "finetune", pooling="mean", norm_bias=True)
    out = export_head(source, "category", tmp_path / "category")
    script = textwrap.dedent(
        f"""
        import json, sys
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
        texts = {TEXTS!r}
        tokenizer = AutoTokenizer.from_pretrained({str(out)!r})
        model = AutoModelForSequenceClassification.from_pretrained({str(out)!r}).eval()
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(**batch).logits
        top = pipeline("text-classification", model={str(out)!r})(texts[0])[0]["label"]
        print(json.dumps({{"logits": logits.tolist(), "top": top, "imported": "sec_cybert" in sys.modules}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["imported"] is False
    _, _, expected, _ = logits_of(source, out, "category")
    assert torch.allclose(torch.tensor(answer["logits"]), expected, rtol=1e-5, atol=1e-5)
    assert answer["top"] == HEADS[0].labels[int(expected[0].argmax())]


def test_the_export_checks_its_own_logits(base, tmp_path, monkeypatch):
    import sec_cybert.sharing.export as export

    source = finetuned(base, tmp_path / "finetune")
    monkeypatch.setattr(export, "HEAD_NORM_WEIGHT", 1.0)  # a head that rescales: the check must catch it
    with pytest.raises(DataError, match="does not reproduce the fine-tune's logits"):
        export_head(source, "category", tmp_path / "broken")
    assert not (tmp_path / "broken").exists()


def test_what_cannot_be_exported_is_refused_in_one_line(base, tmp_path):
    source = finetuned(base, tmp_path / "finetune")
    with pytest.raises(DataError, match=r"has no head 'nope'; its heads: category, specificity, levels, topics"):
        export_head(source, "nope", tmp_path / "out")
    with pytest.raises(DataError, match="into another directory"):
        export_head(source, "category", source)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    with pytest.raises(DataError, match="is not empty"):
        export_head(source, "category", tmp_path / "full")
    with pytest.raises(DataError, match="is not a fine-tuned directory"):
        export_head(base, "category", tmp_path / "out")
    attention = finetuned(base, tmp_path / "attention", pooling="attention", heads=HEADS[:1])
    with pytest.raises(DataError, match="pools with 'attention'"):
        export_head(attention, "category", tmp_path / "out")


def test_an_encoder_without_an_exact_head_is_refused(tmp_path):
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    MultiHeadClassifier(BertModel(config), HEADS[:1]).save(tmp_path / "bert")
    with pytest.raises(DataError, match="holds a bert encoder; export_head supports modernbert"):
        export_head(tmp_path / "bert", "category", tmp_path / "out")
