"""Classification metrics per head, computed with scikit-learn.

Every head gets accuracy, macro F1 and per-class F1; ordinal heads add quadratic-weighted
kappa (the agreement measure that penalises a two-level miss four times a one-level miss) and
mean absolute error in levels; single-label heads add a confusion matrix (rows = truth).

Macro F1 averages over the classes present in the split's gold labels (for multilabel, the
labels with at least one positive). A class the split lacks has no F1 to measure: counting it as
0 would cap a perfect model at 6/7 when one of seven categories is missing, and that number
picks the best checkpoint. Such classes are listed in ``<head>_absent_classes`` and their
per-class F1 is None, not 0.0. Predicting an absent class still costs: it is a miss of the true
class, which lowers that class's recall (the confusion matrix shows the predictions).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

from sec_cybert.stages.classifier import decode
from sec_cybert.stages.heads import Head


def head_metrics(
    head: Head, logits: np.ndarray, truth: np.ndarray, *, detailed: bool = True
) -> dict[str, Any]:
    """Metrics for one head, keys prefixed with the head's name (``category_macro_f1`` ...).

    ``detailed`` adds per-class F1, the absent classes, the confusion matrix and, for single-label
    heads, ``<head>_collapsed_to``: the one class every prediction fell in, when that happened
    (not scalars the Trainer can log).
    """
    predicted = decode(head, torch.as_tensor(logits)).numpy()
    if head.kind != "multilabel":
        truth = truth.astype(int)
    present = present_classes(head, truth)
    p = head.name
    if head.kind == "multilabel":
        out: dict[str, Any] = {
            f"{p}_macro_f1": macro_f1(truth, predicted, present),
            f"{p}_micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
            f"{p}_subset_accuracy": float(accuracy_score(truth, predicted)),
        }
    else:
        out = {
            f"{p}_accuracy": float(accuracy_score(truth, predicted)),
            f"{p}_macro_f1": macro_f1(truth, predicted, present),
        }
        if head.is_ordinal:
            out[f"{p}_qwk"] = quadratic_weighted_kappa(truth, predicted, len(head.labels))
            out[f"{p}_mae"] = float(np.abs(truth - predicted).mean())
        if detailed:
            label_ids = list(range(len(head.labels)))
            out[f"{p}_confusion_matrix"] = confusion_matrix(truth, predicted, labels=label_ids).tolist()
            # A head that predicts one class for every example, when the gold has several, has
            # learnt nothing; its macro F1 and QWK look like numbers all the same.
            chosen = sorted({int(i) for i in np.unique(predicted)})
            collapsed = len(chosen) == 1 and len(present) > 1
            out[f"{p}_collapsed_to"] = [head.labels[chosen[0]]] if collapsed else []
    if detailed:
        out[f"{p}_per_class_f1"] = per_class_f1(head, truth, predicted, present)
        out[f"{p}_absent_classes"] = [label for i, label in enumerate(head.labels) if i not in present]
    return out


def present_classes(head: Head, truth: np.ndarray) -> list[int]:
    """Indices of the classes the gold labels hold: a label id seen, or a label with a positive."""
    if head.kind == "multilabel":
        return [int(i) for i in np.flatnonzero(np.asarray(truth).sum(axis=0) > 0)]
    return sorted({int(i) for i in np.unique(truth)} & set(range(len(head.labels))))


def macro_f1(truth: np.ndarray, predicted: np.ndarray, present: list[int]) -> float:
    """F1 averaged over ``present`` classes; 0.0 when there are none (a multilabel split with no
    positive at all), so that tables and best-checkpoint selection stay numeric."""
    if not present:
        return 0.0
    return float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0))


def per_class_f1(
    head: Head, truth: np.ndarray, predicted: np.ndarray, present: list[int]
) -> dict[str, float | None]:
    """F1 of each label, None for one absent from the gold labels (undefined, not a score of 0)."""
    scores = f1_score(truth, predicted, labels=present, average=None, zero_division=0) if present else []
    by_index = dict(zip(present, (float(x) for x in scores), strict=True))
    return {label: by_index.get(i) for i, label in enumerate(head.labels)}


def quadratic_weighted_kappa(truth: np.ndarray, predicted: np.ndarray, levels: int) -> float:
    """Cohen's kappa with quadratic weights over all ``levels`` (1.0 = perfect, 0 = chance).

    Defined as 0.0 when it is undefined (every example and prediction in one level), instead
    of sklearn's NaN, so tables and best-checkpoint selection stay numeric.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about exactly the case handled below
        kappa = cohen_kappa_score(truth, predicted, labels=list(range(levels)), weights="quadratic")
    return 0.0 if np.isnan(kappa) else float(kappa)


def all_head_metrics(
    heads: tuple[Head, ...], logits: tuple[np.ndarray, ...], truths: tuple[np.ndarray, ...], *, detailed: bool
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for head, head_logits, truth in zip(heads, logits, truths, strict=True):
        metrics.update(head_metrics(head, head_logits, truth, detailed=detailed))
    return metrics
