"""Classification heads, ordinal decoding and the metrics of the ablation table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sec_cybert.stages.classifier import (
    MultiHeadClassifier,
    decode,
    head_loss,
    ordinal_predictions,
    ordinal_targets,
)
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


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize("kind", ["coral", "thresholds"])
def test_ordinal_loss_sums_the_thresholds_and_averages_the_examples(kind):
    # Cao et al. (2020): an example's loss is the sum over its K-1 thresholds, the batch's the mean.
    head = Head(name="specificity", labels=LEVELS, kind=kind)
    logits = torch.tensor([[2.0, 0.0, -1.0], [1.0, -1.0, -3.0]])
    labels = torch.tensor([2, 0])  # targets [1, 1, 0] and [0, 0, 0]
    # BCE with logits is softplus(-z) for a target of 1 and softplus(z) for a target of 0.
    first = _softplus(-2.0) + _softplus(-0.0) + _softplus(-1.0)
    second = _softplus(1.0) + _softplus(-1.0) + _softplus(-3.0)
    loss = head_loss(head, logits, labels)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)
    # A mean over the thresholds as well (the old loss) is a third of that: K-1 = 3.
    mean_over_thresholds = torch.nn.functional.binary_cross_entropy_with_logits(logits, ordinal_targets(labels, 3))
    assert loss.item() == pytest.approx(3 * mean_over_thresholds.item(), rel=1e-6)


def test_multilabel_loss_averages_over_labels_and_examples():
    head = Head(name="topics", labels=("a", "b"), kind="multilabel")
    logits = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    expected = (_softplus(-1.0) + _softplus(-2.0) + _softplus(0.5) + _softplus(3.0)) / 4
    assert head_loss(head, logits, targets).item() == pytest.approx(expected, rel=1e-6)


CATEGORIES = ("a", "b", "c", "d", "e", "f", "g")


def _one_hot_logits(predicted):
    return np.eye(len(CATEGORIES))[predicted] * 10.0


def test_macro_f1_averages_the_classes_present_in_the_split():
    head = Head(name="category", labels=CATEGORIES)
    truth = np.array([0, 1, 2, 3, 4, 5] * 3)  # no "g" in this split
    metrics = head_metrics(head, _one_hot_logits(truth), truth)
    assert metrics["category_macro_f1"] == 1.0  # counting "g" as 0 gave 6/7 = 0.857
    assert metrics["category_absent_classes"] == ["g"]
    assert metrics["category_per_class_f1"]["g"] is None and metrics["category_per_class_f1"]["a"] == 1.0
    scalars = head_metrics(head, _one_hot_logits(truth), truth, detailed=False)
    assert scalars == {"category_accuracy": 1.0, "category_macro_f1": 1.0}  # the Trainer logs scalars only


def test_predicting_an_absent_class_still_costs():
    head = Head(name="category", labels=CATEGORIES)
    truth = np.array([0, 1, 2, 3, 4, 5] * 2)
    predicted = truth.copy()
    predicted[0] = 6  # one "a" taken for the absent "g": "a" keeps its precision, loses recall
    metrics = head_metrics(head, _one_hot_logits(predicted), truth)
    f1_of_a = 2 * 1.0 * 0.5 / (1.0 + 0.5)
    assert metrics["category_per_class_f1"]["a"] == pytest.approx(f1_of_a)
    assert metrics["category_macro_f1"] == pytest.approx((f1_of_a + 5) / 6)
    assert metrics["category_per_class_f1"]["g"] is None  # predicted, yet no gold "g" to score
    assert metrics["category_confusion_matrix"][0][6] == 1


def test_multilabel_macro_f1_leaves_out_labels_without_a_gold_positive():
    head = Head(name="topics", labels=("a", "b", "c"), kind="multilabel")
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])  # no example has "c"
    metrics = head_metrics(head, np.where(truth == 1, 4.0, -4.0), truth)
    assert metrics["topics_macro_f1"] == 1.0 and metrics["topics_absent_classes"] == ["c"]
    assert metrics["topics_per_class_f1"] == {"a": 1.0, "b": 1.0, "c": None}
    wrong = truth.copy()
    wrong[0, 2] = 1  # a false "c": micro F1 and subset accuracy pay for it
    metrics = head_metrics(head, np.where(wrong == 1, 4.0, -4.0), truth)
    assert metrics["topics_macro_f1"] == 1.0
    assert metrics["topics_micro_f1"] < 1.0 and metrics["topics_subset_accuracy"] == pytest.approx(2 / 3)
    nothing = head_metrics(head, np.full((2, 3), -4.0), np.zeros((2, 3), int))
    assert nothing["topics_macro_f1"] == 0.0 and nothing["topics_absent_classes"] == ["a", "b", "c"]


def _encoder():
    from transformers import ModernBertModel

    from sec_cybert.testing import tiny_modernbert_config

    return ModernBertModel(
        tiny_modernbert_config(vocab_size=64, hidden_size=16, intermediate_size=32, max_position_embeddings=64)
    )


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


def test_a_head_that_predicts_one_class_for_everything_is_marked_collapsed():
    import numpy as np

    from sec_cybert.stages.heads import Head
    from sec_cybert.stages.metrics import head_metrics

    head = Head(name="category", labels=("a", "b", "c"), kind="softmax")
    truth = np.array([0, 1, 2, 1])
    always_b = np.tile(np.array([[0.0, 5.0, 0.0]]), (4, 1))
    assert head_metrics(head, always_b, truth)["category_collapsed_to"] == ["b"]
    varied = np.eye(3)[[0, 1, 2, 2]] * 5
    assert head_metrics(head, varied, truth)["category_collapsed_to"] == []
    # One gold class only: predicting it everywhere is right, not a collapse.
    assert head_metrics(head, always_b, np.array([1, 1, 1, 1]))["category_collapsed_to"] == []
