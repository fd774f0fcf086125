"""Classification metrics per head, computed with scikit-learn.

Every head gets accuracy, macro F1 and per-class F1; ordinal heads add quadratic-weighted
kappa (the agreement measure that penalises a two-level miss four times a one-level miss) and
mean absolute error in levels; single-label heads add a confusion matrix (rows = truth).
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

    ``detailed`` adds per-class F1 and the confusion matrix (not scalars the Trainer can log).
    """
    predicted = decode(head, torch.as_tensor(logits)).numpy()
    label_ids = list(range(len(head.labels)))
    p = head.name
    if head.kind == "multilabel":
        out: dict[str, Any] = {
            f"{p}_macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
            f"{p}_micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
            f"{p}_subset_accuracy": float(accuracy_score(truth, predicted)),
        }
        per_class = f1_score(truth, predicted, average=None, zero_division=0)
    else:
        truth = truth.astype(int)
        out = {
            f"{p}_accuracy": float(accuracy_score(truth, predicted)),
            f"{p}_macro_f1": float(
                f1_score(truth, predicted, labels=label_ids, average="macro", zero_division=0)
            ),
        }
        if head.is_ordinal:
            out[f"{p}_qwk"] = quadratic_weighted_kappa(truth, predicted, len(head.labels))
            out[f"{p}_mae"] = float(np.abs(truth - predicted).mean())
        per_class = f1_score(truth, predicted, labels=label_ids, average=None, zero_division=0)
        if detailed:
            out[f"{p}_confusion_matrix"] = confusion_matrix(truth, predicted, labels=label_ids).tolist()
    if detailed:
        out[f"{p}_per_class_f1"] = {
            label: float(score) for label, score in zip(head.labels, per_class, strict=True)
        }
    return out


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
