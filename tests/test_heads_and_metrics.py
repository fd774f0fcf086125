"""Classification heads, ordinal decoding and the metrics of the ablation table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sec_cybert.stages.classifier import MultiHeadClassifier, decode, ordinal_predictions, ordinal_targets
from sec_cybert.stages.heads import Head
from sec_cybert.stages.metrics import head_metrics, quadratic_weighted_kappa

LEVELS = ("generic", "sector", "firm", "quantified")


def test_ordinal_targets_and_predictions_are_inverse():
    labels = torch.tensor([0, 1, 2, 3])
    targets = ordinal_targets(labels, 3)
    assert targets.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]
    logits = torch.where(targets.bool(), 5.0, -5.0)
    assert ordinal_predictions(logits).tolist() == [0, 1, 2, 3]


def test_quadratic_weighted_kappa_penalises_distance():
    truth = np.array([0, 1, 2, 3] * 25)
    assert quadratic_weighted_kappa(truth, truth, 4) == pytest.approx(1.0)
    near = np.clip(truth + 1, 0, 3)
    far = np.clip(truth + 2, 0, 3)
    assert quadratic_weighted_kappa(truth, far, 4) < quadratic_weighted_kappa(truth, near, 4) < 1.0
    assert quadratic_weighted_kappa(np.zeros(5, int), np.zeros(5, int), 4) == 0.0  # undefined -> 0, not NaN


def test_head_metrics_for_an_ordinal_head():
    head = Head(name="specificity", labels=LEVELS, kind="coral")
    truth = np.array([0, 1, 2, 3])
    logits = np.array([[-5, -5, -5], [5, -5, -5], [5, 5, -5], [5, 5, -5]], dtype=float)  # last one off by one
    metrics = head_metrics(head, logits, truth)
    assert metrics["specificity_accuracy"] == 0.75 and metrics["specificity_mae"] == 0.25
    assert metrics["specificity_per_class_f1"]["quantified"] == 0.0
    assert metrics["specificity_confusion_matrix"][3] == [0, 0, 1, 0]
    assert 0 < metrics["specificity_qwk"] < 1


def test_multilabel_head():
    head = Head(name="topics", labels=("a", "b", "c"), kind="multilabel")
    truth = np.array([[1, 0, 1], [0, 1, 0]])
    metrics = head_metrics(head, np.where(truth == 1, 4.0, -4.0), truth)
    assert metrics["topics_macro_f1"] == 1.0 and metrics["topics_subset_accuracy"] == 1.0


def _encoder():
    from transformers import ModernBertConfig, ModernBertModel

    config = ModernBertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, pad_token_id=0, cls_token_id=1, sep_token_id=2, bos_token_id=1, eos_token_id=2,
    )
    return ModernBertModel(config)


@pytest.mark.parametrize("pooling", ["cls", "mean", "attention"])
def test_classifier_forward_loss_and_save_load(pooling, tmp_path):
    torch.manual_seed(0)
    heads = (
        Head(name="category", labels=("x", "y", "z"), kind="softmax"),
        Head(name="specificity", labels=LEVELS, kind="thresholds"),
    )
    model = MultiHeadClassifier(_encoder(), heads, pooling=pooling, class_weights={"category": [1.0, 2.0, 1.0]}).eval()
    inputs = {"input_ids": torch.randint(3, 64, (4, 10)), "attention_mask": torch.ones(4, 10, dtype=torch.long)}
    inputs["attention_mask"][0, 6:] = 0
    out = model(**inputs, labels_category=torch.tensor([0, 1, 2, 0]), labels_specificity=torch.tensor([0, 1, 2, 3]))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert out["logits_category"].shape == (4, 3) and out["logits_specificity"].shape == (4, 3)
    model.save(tmp_path / "clf")
    again = MultiHeadClassifier.load(tmp_path / "clf")
    with torch.no_grad():
        before = model(**inputs)
        after = again(**inputs)
    for key in ("logits_category", "logits_specificity"):
        torch.testing.assert_close(before[key], after[key])
    from transformers import AutoModel

    assert isinstance(AutoModel.from_pretrained(tmp_path / "clf"), type(model.encoder))
    assert decode(heads[0], before["logits_category"]).shape == (4,)


def test_head_validation():
    with pytest.raises(ValueError, match="unique"):
        Head(name="h", labels=("a", "a"))
    with pytest.raises(ValueError, match="at least 2"):
        Head(name="h", labels=("a",))
