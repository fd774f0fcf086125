"""A card's front matter: huggingface_hub's ``ModelCardData`` with one ``EvalResult`` per
measured number, which the library writes as the hub's ``model-index``.

The hub keys a ``model-index`` entry by task and dataset (type, config, split): two heads scored
on the same split would merge into one entry. Each head is therefore its own dataset config,
named after the head (the label field of the labels file it reads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from sec_cybert.core.context import StageResult
from sec_cybert.sharing.card_text import ORDINAL_KINDS, corpus_text, exp, finite, head_text, split_text

_TAG = re.compile(r"[^a-z0-9\-]+")

#: (metric key suffix, model-index type, name, args) of each head kind's scalar metrics.
_HEAD_METRICS = {
    "single": (
        ("macro_f1", "f1", "macro F1", {"average": "macro"}),
        ("accuracy", "accuracy", "accuracy", None),
    ),
    "ordinal": (
        ("qwk", "cohen_kappa", "quadratic weighted kappa", {"weights": "quadratic"}),
        ("mae", "mae", "mean absolute error (levels)", None),
    ),
    "multilabel": (
        ("macro_f1", "f1", "macro F1", {"average": "macro"}),
        ("micro_f1", "f1", "micro F1", {"average": "micro"}),
        ("subset_accuracy", "accuracy", "subset accuracy", None),
    ),
}


def metric_rows(head: Mapping[str, Any]) -> tuple[tuple[str, str, str, Any], ...]:
    """The scalar metrics a head of this kind reports, as (key suffix, type, name, args)."""
    kind = head.get("kind", "softmax")
    if kind == "multilabel":
        return _HEAD_METRICS["multilabel"]
    if kind in ORDINAL_KINDS:
        return _HEAD_METRICS["single"] + _HEAD_METRICS["ordinal"]
    return _HEAD_METRICS["single"]


def card_data(
    result: StageResult,
    chain: Sequence[StageResult],
    *,
    name: str,
    base_model: str | None,
    model_type: str | None,
    heads: Sequence[Mapping[str, Any]],
    export_head: str | None,
) -> ModelCardData:
    """The front matter of ``result``'s card (``chain``: the stages before it, oldest first)."""
    if result.produces_variant:
        pipeline_tag = "fill-mask"
        results = _pretraining_results(result)
    else:
        pipeline_tag = "text-classification" if export_head is not None else None
        results = _head_results(result, heads)
    return ModelCardData(
        base_model=base_model,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=_tags(result, chain, model_type, export_head is not None),
        # Without results, no model-index (and no model_name, which only names that index).
        model_name=name if results else None,
        eval_results=results or None,
    )


def _pretraining_results(result: StageResult) -> list[EvalResult]:
    loss = result.metrics.get("eval_loss")
    if not finite(loss):
        return []
    ppl = result.metrics.get("eval_perplexity")
    ppl = ppl if finite(ppl) else exp(loss)
    where = {
        "task_type": "fill-mask",
        "task_name": "masked language modelling",
        "dataset_type": "json",
        "dataset_name": f"{corpus_text(result.config.get('corpus'), markup=False)}: held-out validation documents",
        "dataset_split": "validation",
    }
    results = [EvalResult(**where, metric_type="loss", metric_value=_round(loss), metric_name="MLM eval loss (nats)")]
    if finite(ppl):
        results.append(
            EvalResult(**where, metric_type="perplexity", metric_value=_round(ppl), metric_name="perplexity (e^loss)")
        )
    return results


def _head_results(result: StageResult, heads: Sequence[Mapping[str, Any]]) -> list[EvalResult]:
    split = result.metrics.get("evaluated_on")
    if not split:
        return []
    results = []
    for head in heads:
        for suffix, kind, label, args in metric_rows(head):
            value = result.metrics.get(f"{head['name']}_{suffix}")
            if finite(value):
                results.append(
                    EvalResult(
                        task_type="text-classification",
                        task_name=head_text(head),
                        dataset_type="json",
                        dataset_name=split_text(result, split, markup=False),
                        dataset_config=str(head["name"]),
                        dataset_split=str(split),
                        metric_type=kind,
                        metric_value=_round(value),
                        metric_name=f"{head['name']} {label}",
                        metric_args=dict(args) if args else None,
                    )
                )
    return results


def _tags(result: StageResult, chain: Sequence[StageResult], model_type: str | None, exported: bool) -> list[str]:
    tags = ["sec-cybert"]
    if model_type:
        tags.append(model_type)
    if result.produces_variant:
        tags += ["fill-mask", "continued-pretraining"]
    else:
        tags.append("text-classification")
        if not exported:
            tags.append("multi-head-classifier")
    tags += [record.stage for record in chain] + ([result.stage] if result.produces_variant else [])
    cleaned = [_TAG.sub("-", t.lower()).strip("-") for t in tags]
    return list(dict.fromkeys(t for t in cleaned if t))


def _round(value: float) -> float:
    return round(float(value), 4)
