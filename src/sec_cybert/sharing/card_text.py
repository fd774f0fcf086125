"""The sentences a model card says about a stage record: its corpus, what it kept and dropped,
its budget, training and result, each written from the record alone.

Paths are shortened to their last two parts (:func:`short`), so a card names a file without the
home directory of the machine that trained.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sec_cybert.core.context import StageResult

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
ORDINAL_KINDS = ("coral", "thresholds")


def base_description(reference: str) -> tuple[str | None, str]:
    """(hub id for ``base_model`` or None, the base as the card describes it)."""
    path = Path(reference)
    if path.exists():
        recipe_file = path / "encoder-recipe.json"
        if recipe_file.is_file():
            try:
                recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
            except (ValueError, OSError):
                recipe = {}
            shape = ", ".join(
                f"{key} {recipe[key]}" for key in ("hidden_size", "num_hidden_layers", "vocab_size") if key in recipe
            )
            return None, (
                f"a random-init `{recipe.get('encoder', 'encoder')}` ({shape}) with a tokenizer trained "
                f"on the run's corpus, built by sec_cybert in `{short(path)}`"
            )
        return None, f"the local checkpoint `{short(path)}`"
    if _HUB_ID.match(reference):
        return reference, f"[{reference}](https://huggingface.co/{reference})"
    return None, f"`{reference}`"


def model_type(directory: Path) -> str | None:
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def variant_name(producers: Sequence[StageResult]) -> str:
    return "base" if not producers else "+" + "+".join(r.stage.upper() for r in producers)


def stage_items(record: StageResult, seed: int | None) -> list[str]:
    """One stage of the card's "How it was trained" list: what it read, kept, dropped and measured."""
    config, report, metrics = record.config, record.report, record.metrics
    items: list[str] = []
    if config.get("corpus") is not None:
        items.append(f"corpus: {corpus_text(config.get('corpus'))}")
    read = report.get("read")
    if isinstance(read, Mapping):
        items.append(f"read: {count(read.get('kept'))} documents kept, {_skipped(read)} skipped")
    selection = report.get("selection")
    if isinstance(selection, Mapping):
        budget = config.get("max_tokens")
        items.append(
            f"budget: {'max_tokens ' + count(budget) if budget else 'the whole corpus'}; kept "
            f"{count(selection.get('documents_kept'))} of {count(selection.get('documents_in'))} documents, "
            f"{count(selection.get('tokens_kept'))} of {count(selection.get('tokens_in'))} tokens"
            + _dates(selection)
        )
    duplicates = report.get("duplicates")
    if isinstance(duplicates, Mapping):
        items.append(
            f"duplicates ({duplicates.get('mode')}): {count(duplicates.get('exact_copies'))} exact and "
            f"{count(duplicates.get('near_copies'))} near copies, {count(duplicates.get('dropped'))} dropped"
        )
    if isinstance(report.get("validation"), Mapping):
        held = report["validation"]
        items.append(
            f"validation: {count(held.get('documents'))} whole documents held out "
            f"({count(held.get('tokens'))} tokens; validation_split {config.get('validation_split')})"
        )
    for split in ("train", "eval", "holdout"):
        file = config.get(f"{split}_file")
        part = report.get(split)
        if file and isinstance(part, Mapping):
            truncated = part.get("truncated") or {}
            cut = f", {count(truncated.get('documents'))} cut at max_length" if truncated.get("documents") else ""
            items.append(f"{split}: `{short(file)}`, {count(part.get('kept'))} examples ({_skipped(part)} skipped{cut})")
    heads = [h for h in config.get("heads", ()) if isinstance(h, Mapping)]
    if heads:
        items.append("heads: " + "; ".join(head_text(h, labels=True) for h in heads))
        items.append(
            f"pooling {config.get('pooling')}, dropout {config.get('dropout')}, max_length {config.get('max_length')}"
            + (f", best checkpoint by {config['metric_for_best_model']}" if config.get("metric_for_best_model") else "")
        )
    contamination = _contamination_text(report.get("contamination"))
    if contamination:
        items.append(f"contamination check: {contamination}")
    items.append(f"training: {_training_text(config, metrics)}")
    outcome = _outcome_text(record)
    if outcome:
        items.append(f"result: {outcome}")
    items.append(f"seed: {seed if seed is not None else 'not recorded'}")
    return items


def corpus_text(corpus: Any, *, markup: bool = True) -> str:
    if not isinstance(corpus, Mapping):
        return str(corpus) if corpus is not None else "n/a"
    kind = corpus.get("kind", "corpus")
    location = corpus.get("path")
    plain = {"kind", "path", "text_field", "id_field", "on_bad_record"}
    options = ", ".join(f"{k}={v}" for k, v in corpus.items() if k not in plain and v is not None)
    quote = "`" if markup else ""
    where = f" {quote}{short(location)}{quote}" if location else ""
    return f"{kind}{where}" + (f" ({options})" if options else "")


def split_text(result: StageResult, split: str, *, markup: bool = True) -> str:
    file = result.config.get(f"{split}_file")
    examples = result.metrics.get("examples")
    counted = f", {count(examples)} examples" if examples is not None else ""
    quote = "`" if markup else ""
    return f"{split} split ({quote}{short(file)}{quote}{counted})" if file else f"{split} split{counted}"


def head_text(head: Mapping[str, Any], *, labels: bool = False) -> str:
    names = list(head.get("labels", ()))
    kind = head.get("kind", "softmax")
    text = f"{head.get('name')} ({kind}, {len(names)} {'levels' if kind in ORDINAL_KINDS else 'labels'})"
    if labels:
        text += ": " + ", ".join(names)
        if head.get("class_weights") not in (None, "none"):
            text += f" [class weights {head['class_weights']}]"
    return text


def _contamination_text(contamination: Any) -> str:
    if not isinstance(contamination, Mapping):
        return ""
    excluded = contamination.get("excluded") or {}
    parts = []
    if excluded:
        parts.append(
            f"{count(excluded.get('documents_removed', 0))} documents removed, "
            f"{count(excluded.get('documents_cut', 0))} cut ({count(excluded.get('lines_removed', 0))} lines)"
        )
    for overlap in contamination.get("overlaps") or ():
        if isinstance(overlap, Mapping):
            parts.append(
                f"{overlap.get('source')} vs {overlap.get('target')}: {count(overlap.get('exact', 0))} exact, "
                f"{count(overlap.get('near', 0))} near copies"
            )
    return "; ".join(parts) if parts else "no overlap checked"


def _training_text(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    training = config.get("training") or {}
    parts = []
    for key in ("chunker", "masker"):
        component = config.get(key)
        if isinstance(component, Mapping):
            settings = ", ".join(
                f"{k} {v}" for k, v in component.items() if k in ("seq_len", "max_length", "probability") and v is not None
            )
            parts.append(f"{key} {component.get('kind')}" + (f" ({settings})" if settings else ""))
    if isinstance(training, Mapping) and training:
        length = f"max_steps {training['max_steps']}" if training.get("max_steps") else f"{training.get('num_train_epochs')} epochs"
        batch = f"batch {training.get('per_device_train_batch_size')} x {training.get('gradient_accumulation_steps')} per device"
        parts.append(
            f"{length}, {batch}, lr {training.get('learning_rate')}, {training.get('lr_scheduler_type')} schedule "
            f"(warmup {training.get('warmup_ratio')}), weights {training.get('model_dtype')}"
        )
    if metrics.get("global_step") is not None:
        parts.append(f"{count(metrics['global_step'])} optimizer steps")
    if finite(metrics.get("train_loss")):
        parts.append(f"train loss {number(metrics['train_loss'])}")
    return "; ".join(parts) or "n/a"


def _outcome_text(record: StageResult) -> str:
    metrics = record.metrics
    if finite(metrics.get("eval_loss")):
        ppl = metrics.get("eval_perplexity", exp(metrics["eval_loss"]))
        return f"MLM eval loss {number(metrics['eval_loss'])}, perplexity (e^loss) {number(ppl)}"
    heads = [h for h in record.config.get("heads", ()) if isinstance(h, Mapping)]
    shown = [
        f"{h['name']} macro F1 {number(metrics[h['name'] + '_macro_f1'])}"
        + (f", QWK {number(metrics[h['name'] + '_qwk'])}" if finite(metrics.get(h["name"] + "_qwk")) else "")
        for h in heads
        if finite(metrics.get(f"{h['name']}_macro_f1"))
    ]
    if shown and metrics.get("evaluated_on"):
        return "; ".join(shown) + f" ({metrics['evaluated_on']} split)"
    return ""


def short(path: Any) -> str:
    """The last two parts of a path: enough to name a file, without the trainer's home directory."""
    if path is None:
        return "n/a"
    parts = Path(str(path)).parts
    if len(parts) <= 2 and not Path(str(path)).is_absolute():
        return str(path)
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(path)


def _skipped(read: Mapping[str, Any]) -> str:
    skipped = read.get("skipped") or {}
    total = sum(skipped.values()) if isinstance(skipped, Mapping) else 0
    reasons = ", ".join(f"{n} {why}" for why, n in skipped.items()) if isinstance(skipped, Mapping) else ""
    return f"{total}" + (f" ({reasons})" if reasons else "")


def _dates(selection: Mapping[str, Any]) -> str:
    newest, oldest = selection.get("newest_kept"), selection.get("oldest_kept")
    return f", dated {oldest} to {newest}" if newest and oldest else ""


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def exp(loss: Any) -> float:
    try:
        return math.exp(loss)
    except (OverflowError, TypeError):
        return math.inf


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
