"""Per-item predictions of a fine-tune, kept beside its model.

The ablation's paired statistics compare variants item by item on the same holdout, and an
error analysis starts from the items a model got wrong: both need what each model predicted for
each item, not only the metrics. ``predictions-<split>.jsonl`` holds one line per item:

``{"id", "groups": {"company", "filing"}, "heads": {<head>: {"truth", "predicted", "scores"}}}``

``truth``/``predicted`` are label names (a list of them for multilabel heads); ``scores`` are
softmax probabilities (softmax heads) or, for ordinal and multilabel heads, the sigmoid of each
threshold or label logit (for CORAL, P(level > k)).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sec_cybert.core.components import Document
from sec_cybert.corpus.split import GROUP_FIELDS
from sec_cybert.errors import DataError
from sec_cybert.stages.classifier import decode
from sec_cybert.stages.heads import Head

PREDICTIONS_FILE = "predictions-{split}.jsonl"


def item_key(document: Document) -> dict[str, Any]:
    """What identifies a labeled item and the groups it belongs to (None where the record lacks it)."""
    groups = {
        unit: next((str(document.metadata[f]) for f in fields if document.metadata.get(f) not in (None, "")), None)
        for unit, fields in GROUP_FIELDS.items()
    }
    return {"id": str(document.id), "groups": groups}


def _scores(head: Head, logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1) if head.kind == "softmax" else torch.sigmoid(logits)


def _names(head: Head, encoded: np.ndarray) -> Any:
    if head.kind == "multilabel":
        return [label for label, on in zip(head.labels, encoded, strict=True) if on]
    return head.labels[int(encoded)]


def write_predictions(
    directory: Path,
    split: str,
    heads: Sequence[Head],
    items: Sequence[Mapping[str, Any]],
    logits: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
) -> Path:
    """Write ``predictions-<split>.jsonl`` atomically; ``items[i]`` is :func:`item_key` of row i."""
    for head, head_logits in zip(heads, logits, strict=True):
        if len(head_logits) != len(items):
            raise DataError(f"{len(head_logits)} predictions of {head.name} for {len(items)} {split} items")
    decoded = {}
    for head, head_logits in zip(heads, logits, strict=True):
        tensor = torch.as_tensor(np.asarray(head_logits, dtype=np.float32))
        decoded[head.name] = (decode(head, tensor).numpy(), _scores(head, tensor).numpy())
    path = Path(directory) / PREDICTIONS_FILE.format(split=split)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for row, item in enumerate(items):
            per_head = {}
            for head, truth in zip(heads, truths, strict=True):
                predicted, scores = decoded[head.name]
                per_head[head.name] = {
                    "truth": _names(head, np.asarray(truth)[row]),
                    "predicted": _names(head, predicted[row]),
                    "scores": [round(float(x), 6) for x in np.atleast_1d(scores[row])],
                }
            out.write(json.dumps({**item, "heads": per_head}) + "\n")
    os.replace(partial, path)
    return path


def read_predictions(directory: Path, split: str) -> list[dict[str, Any]] | None:
    """The items of ``predictions-<split>.jsonl`` in ``directory``; None when it was not written."""
    path = Path(directory) / PREDICTIONS_FILE.format(split=split)
    if not path.is_file():
        return None
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not the predictions file a fine-tune writes ({error}); delete it and re-run") from error
