"""Stages: MLM (DAPT, TAPT) and fine-tuning.

    stages.MLM.dapt(corpus.JsonlShards("data/dapt-corpus"))
    stages.MLM.tapt(corpus.Paragraphs("data/paragraphs.jsonl"))
    stages.FineTune.sec_cybert("data/labels.jsonl", eval_file="data/eval.jsonl")

Names resolve lazily so that importing the package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MLM": ("sec_cybert.stages.mlm", "MLMStage"),
    "MLMStage": ("sec_cybert.stages.mlm", "MLMStage"),
    "FineTune": ("sec_cybert.stages.finetune", "FineTuneStage"),
    "FineTuneStage": ("sec_cybert.stages.finetune", "FineTuneStage"),
    "Head": ("sec_cybert.stages.heads", "Head"),
    "MultiHeadClassifier": ("sec_cybert.stages.classifier", "MultiHeadClassifier"),
    "Training": ("sec_cybert.stages.training", "Training"),
    "StageContext": ("sec_cybert.core.context", "StageContext"),
    "StageResult": ("sec_cybert.core.context", "StageResult"),
    "StageOutcome": ("sec_cybert.core.context", "StageOutcome"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sec_cybert.stages' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)
