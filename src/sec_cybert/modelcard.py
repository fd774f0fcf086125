"""Model cards for the directories a run saves, and pushing a directory to the Hugging Face Hub.

Every MLM stage output and every fine-tune output gets a ``README.md`` in the hub's format:
YAML front matter (``library_name``, ``base_model`` when the chain starts from a hub model,
``pipeline_tag``, ``tags``, and a ``model-index`` with the stage's measured results) and a body
that walks the chain back to the base -- each stage with its corpus, what it kept, the copies it
dropped, what the contamination check removed, its budget and its result -- then the seeds, the
library versions and how to load the directory.

The host writes the card after ``stage.json`` (:func:`write_model_card`); everything it says
comes from the stage records (:class:`~sec_cybert.stages.context.StageResult`), so a card can be
rewritten at any time from a finished run::

    from sec_cybert.modelcard import stage_chain, write_model_card
    from sec_cybert.stages import StageResult

    result = StageResult.load("runs/x/finetune-dapt-tapt")
    write_model_card(result, stage_chain(result))

:func:`push_to_hub` uploads a saved directory (card included) with ``HfApi.upload_folder``.
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sec_cybert.errors import SecCybertError
from sec_cybert.files import write_text_atomic
from sec_cybert.stages.context import StageResult

CARD_FILE = "README.md"
#: What :func:`push_to_hub` leaves out: resume points (optimizer states, several copies of the
#: weights) and the record of a start, which only matters on the machine that trained.
#: ``validation-set/`` is the masked validation split an MLM stage keeps for the ablation: corpus
#: text, not model.
PUSH_IGNORE = ("checkpoints/*", "validation-set/*", "stage-started.json", "*.part")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_TAG = re.compile(r"[^a-z0-9\-]+")


class HubError(SecCybertError):
    """The Hugging Face Hub could not be reached, or refused the upload."""


# --- the chain --------------------------------------------------------------------------------
def stage_chain(result: StageResult) -> list[StageResult]:
    """The records of the variant-producing stages (DAPT, TAPT) that led to ``result``'s input,
    oldest first, read from their ``stage.json`` (:func:`sec_cybert.pipeline.variant_chain`)."""
    from sec_cybert.pipeline import variant_chain

    return [v.mlm_result for v in variant_chain(result.init_from) if v.mlm_result is not None]


def write_model_card(result: StageResult, chain: Sequence[StageResult], *, seed: int | None = None) -> Path:
    """Write ``README.md`` into ``result.output_dir`` and return its path.

    ``chain`` holds the records of the stages before ``result`` (:func:`stage_chain`), oldest
    first; ``result`` itself is left out of it when present. ``seed`` is the seed ``result`` ran
    with (the host's ``context.seed``); without it the card uses a seed the record holds, if any.
    The card depends on the records alone (and the base's ``encoder-recipe.json``), so the same
    records give the same card.
    """
    out = Path(result.output_dir)
    write_text_atomic(out / CARD_FILE, render_model_card(result, chain, seed=seed))
    return out / CARD_FILE


def render_model_card(
    result: StageResult,
    chain: Sequence[StageResult],
    *,
    seed: int | None = None,
    export_head: str | None = None,
    name: str | None = None,
) -> str:
    """The card's text. ``export_head`` renders the card of a one-head export
    (:func:`sec_cybert.export.export_head`) of the fine-tune ``result``; ``name`` titles the card
    (by default the output directory's name)."""
    out = Path(result.output_dir)
    chain = [r for r in chain if Path(r.output_dir) != out]
    base_id, base_text = _base(chain[0].init_from if chain else result.init_from)
    model_type = _model_type(out)
    heads = [h for h in result.config.get("heads", ()) if isinstance(h, Mapping)]
    if export_head is not None:
        heads = [h for h in heads if h.get("name") == export_head]
    seeds = {id(r): _seed_of(r) for r in chain}
    seeds[id(result)] = seed if seed is not None else _seed_of(result)
    name = name or out.name
    variant = _variant_name(chain + ([result] if result.produces_variant else []))

    meta: dict[str, Any] = {"library_name": "transformers"}
    if base_id:
        meta["base_model"] = base_id
    if result.produces_variant:
        meta["pipeline_tag"] = "fill-mask"
    elif export_head is not None:
        meta["pipeline_tag"] = "text-classification"
    meta["tags"] = _tags(result, chain, model_type, export_head is not None)
    results = _pretraining_results(result) if result.produces_variant else _head_results(result, heads)
    if results:
        meta["model-index"] = [{"name": name, "results": results}]

    lines = [f"# {name}", ""]
    lines += _summary(result, chain, variant, base_text, model_type, heads, export_head)
    lines += ["", "## How it was trained", ""]
    lines.append(f"0. **base**: {base_text}")
    for number, record in enumerate([*chain, result], start=1):
        lines += _stage_section(number, record, seeds.get(id(record)))
    if heads and not result.produces_variant:
        lines += _results_section(result, heads)
    elif result.produces_variant:
        lines += _pretraining_section(result)
    lines += _usage_section(result, heads, export_head)
    lines += _reproducibility_section(result, chain, seeds)
    record = {"stage": result.stage, "kind": result.kind, "fingerprint": result.fingerprint, "seed": seeds[id(result)]}
    if export_head is not None:
        record["exported_head"] = export_head
    lines += ["", f"<!-- sec-cybert-record {json.dumps(record, sort_keys=True)} -->"]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n" + "\n".join(lines).rstrip() + "\n"


# --- front matter -----------------------------------------------------------------------------
def _pretraining_results(result: StageResult) -> list[dict[str, Any]]:
    loss = result.metrics.get("eval_loss")
    if not _finite(loss):
        return []
    ppl = result.metrics.get("eval_perplexity")
    ppl = ppl if _finite(ppl) else _exp(loss)
    metrics = [{"type": "loss", "value": _round(loss), "name": "MLM eval loss (nats)"}]
    if _finite(ppl):
        metrics.append({"type": "perplexity", "value": _round(ppl), "name": "perplexity (e^loss)"})
    corpus = _corpus_text(result.config.get("corpus"), markup=False)
    return [
        {
            "task": {"type": "fill-mask", "name": "masked language modelling"},
            "dataset": {"type": "json", "name": f"{corpus}: held-out validation documents", "split": "validation"},
            "metrics": metrics,
        }
    ]


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


def _metric_rows(head: Mapping[str, Any]) -> tuple[tuple[str, str, str, Any], ...]:
    kind = head.get("kind", "softmax")
    if kind == "multilabel":
        return _HEAD_METRICS["multilabel"]
    if kind in ("coral", "thresholds"):
        return _HEAD_METRICS["single"] + _HEAD_METRICS["ordinal"]
    return _HEAD_METRICS["single"]


def _head_results(result: StageResult, heads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    split = result.metrics.get("evaluated_on")
    if not split:
        return []
    dataset = {"type": "json", "name": _split_text(result, split, markup=False), "split": str(split)}
    results = []
    for head in heads:
        metrics = []
        for suffix, kind, label, args in _metric_rows(head):
            value = result.metrics.get(f"{head['name']}_{suffix}")
            if _finite(value):
                metric = {"type": kind, "value": _round(value), "name": f"{head['name']} {label}"}
                if args:
                    metric["args"] = dict(args)
                metrics.append(metric)
        if metrics:
            results.append(
                {
                    "task": {"type": "text-classification", "name": _head_text(head)},
                    "dataset": dict(dataset),
                    "metrics": metrics,
                }
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


# --- body -------------------------------------------------------------------------------------
def _summary(
    result: StageResult,
    chain: Sequence[StageResult],
    variant: str,
    base_text: str,
    model_type: str | None,
    heads: Sequence[Mapping[str, Any]],
    export_head: str | None,
) -> list[str]:
    from sec_cybert import __version__

    arch = model_type or "transformers"
    if result.produces_variant:
        what = f"A {arch} encoder with its masked-language-model head after continued pretraining: the `{variant}` variant."
    elif export_head is not None:
        what = (
            f"The `{export_head}` head of the `{result.stage}` fine-tune, exported to a standard "
            f"`AutoModelForSequenceClassification` checkpoint ({arch})."
        )
    else:
        what = (
            f"A {arch} encoder fine-tuned (`{result.stage}`) with {len(heads)} classification "
            f"head{'s' if len(heads) != 1 else ''} on the `{variant}` variant: "
            + ", ".join(f"`{h['name']}`" for h in heads)
            + "."
        )
    lines = [what, ""]
    if export_head is not None:
        lines.append(
            f"- exported from the fine-tuned directory `{_short(result.output_dir)}` by "
            "`sec_cybert.export.export_head`, which checks that the logits are the head's"
        )
    return lines + [
        f"- base model: {base_text}",
        f"- stages: {' -> '.join(['base', *(r.stage for r in chain), result.stage])}",
        f"- written by sec_cybert {__version__}; `stage.json` beside this card holds the full record "
        "(resolved config, data report, input digests)",
    ]


def _stage_section(number: int, record: StageResult, seed: int | None) -> list[str]:
    config, report, metrics = record.config, record.report, record.metrics
    lines = [f"{number}. **{record.stage}** ({record.kind}), from `{_short(record.init_from)}`:"]
    items: list[str] = []
    if config.get("corpus") is not None:
        items.append(f"corpus: {_corpus_text(config.get('corpus'))}")
    read = report.get("read")
    if isinstance(read, Mapping):
        items.append(f"read: {_count(read.get('kept'))} documents kept, {_skipped(read)} skipped")
    selection = report.get("selection")
    if isinstance(selection, Mapping):
        budget = config.get("max_tokens")
        items.append(
            f"budget: {'max_tokens ' + _count(budget) if budget else 'the whole corpus'}; kept "
            f"{_count(selection.get('documents_kept'))} of {_count(selection.get('documents_in'))} documents, "
            f"{_count(selection.get('tokens_kept'))} of {_count(selection.get('tokens_in'))} tokens"
            + _dates(selection)
        )
    duplicates = report.get("duplicates")
    if isinstance(duplicates, Mapping):
        items.append(
            f"duplicates ({duplicates.get('mode')}): {_count(duplicates.get('exact_copies'))} exact and "
            f"{_count(duplicates.get('near_copies'))} near copies, {_count(duplicates.get('dropped'))} dropped"
        )
    if isinstance(report.get("validation"), Mapping):
        held = report["validation"]
        items.append(
            f"validation: {_count(held.get('documents'))} whole documents held out "
            f"({_count(held.get('tokens'))} tokens; validation_split {config.get('validation_split')})"
        )
    for split in ("train", "eval", "holdout"):
        file = config.get(f"{split}_file")
        part = report.get(split)
        if file and isinstance(part, Mapping):
            truncated = part.get("truncated") or {}
            cut = f", {_count(truncated.get('documents'))} cut at max_length" if truncated.get("documents") else ""
            items.append(f"{split}: `{_short(file)}`, {_count(part.get('kept'))} examples ({_skipped(part)} skipped{cut})")
    heads = [h for h in config.get("heads", ()) if isinstance(h, Mapping)]
    if heads:
        items.append("heads: " + "; ".join(_head_text(h, labels=True) for h in heads))
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
    return lines + [f"   - {item}" for item in items]


def _results_section(result: StageResult, heads: Sequence[Mapping[str, Any]]) -> list[str]:
    split = result.metrics.get("evaluated_on")
    if not split:
        return ["", "## Results", "", "No evaluation split was given: the stage measured nothing."]
    lines = ["", "## Results", "", f"Measured on the {_split_text(result, split)}.", ""]
    lines += ["| head | kind | metric | value |", "|---|---|---|---|"]
    for head in heads:
        for suffix, _kind, label, _args in _metric_rows(head):
            value = result.metrics.get(f"{head['name']}_{suffix}")
            if value is not None:
                lines.append(f"| {head['name']} | {head.get('kind', 'softmax')} | {label} | {_number(value)} |")
    for head in heads:
        per_class = result.metrics.get(f"{head['name']}_per_class_f1")
        if isinstance(per_class, Mapping):
            order = [label for label in head.get("labels", ()) if label in per_class]
            order += [label for label in per_class if label not in order]
            lines += ["", f"Per-class F1 of `{head['name']}`:", "", "| label | F1 |", "|---|---|"]
            lines += [
                f"| {label} | {_number(per_class[label]) if per_class[label] is not None else 'absent from the split'} |"
                for label in order
            ]
    lines += [
        "",
        "Macro F1 averages the classes present in the split; a class it lacks is listed as absent.",
    ]
    for head in heads:
        collapsed = result.metrics.get(f"{head['name']}_collapsed_to")
        if collapsed:
            lines += [
                "",
                f"**`{head['name']}` predicted one class, {', '.join(map(str, collapsed))}, for every example**: "
                "its scores above measure no learning.",
            ]
    return lines


def _pretraining_section(result: StageResult) -> list[str]:
    loss = result.metrics.get("eval_loss")
    if not _finite(loss):
        return ["", "## Results", "", "No validation split (validation_split 0): no MLM eval loss was measured."]
    ppl = result.metrics.get("eval_perplexity", _exp(loss))
    return [
        "",
        "## Results",
        "",
        f"MLM eval loss {_number(loss)} nats on the stage's own held-out validation documents; "
        f"perplexity e^loss = {_number(ppl)}. The loss depends on the corpus, the masking and the "
        "tokenizer: compare it only between runs that share them.",
    ]


def _usage_section(result: StageResult, heads: Sequence[Mapping[str, Any]], export_head: str | None) -> list[str]:
    lines = ["", "## How to use", ""]
    if result.produces_variant:
        return lines + [
            "```python",
            "from transformers import AutoModelForMaskedLM, AutoTokenizer",
            "",
            'model = AutoModelForMaskedLM.from_pretrained("PATH_OR_REPO_ID")',
            'tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO_ID")',
            "```",
        ]
    if export_head is not None:
        head = heads[0] if heads else {}
        lines += [
            "```python",
            "from transformers import pipeline",
            "",
            'classify = pipeline("text-classification", model="PATH_OR_REPO_ID")',
            "```",
            "",
            "No `trust_remote_code` and no sec_cybert import: this is a plain "
            "`AutoModelForSequenceClassification` checkpoint whose logits equal those of the "
            "fine-tuned head.",
        ]
        if head.get("kind") in ("coral", "thresholds"):
            lines += [
                "",
                f"`{head.get('name')}` is ordinal: its {len(head.get('labels', ())) - 1} outputs are rank thresholds, "
                "output k the logit of `label > k` (`id2label` names each `>= <label>`). The predicted "
                "level is the number of thresholds with sigmoid > 0.5, not the top-scoring output.",
            ]
        return lines
    names = [h["name"] for h in heads]
    return lines + [
        "```python",
        "import torch",
        "from transformers import AutoTokenizer",
        "from sec_cybert.stages import MultiHeadClassifier",
        "",
        'model = MultiHeadClassifier.load("PATH")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH")',
        'batch = tokenizer(["..."], return_tensors="pt", truncation=True)',
        "with torch.no_grad():",
        '    predicted = model.predict(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))',
        "```",
        "",
        "`AutoModel.from_pretrained` loads the encoder alone. To load one head with transformers "
        "only, export it: `sec_cybert.export.export_head(PATH, "
        f'"{names[0] if names else "HEAD"}", OUT)` writes an `AutoModelForSequenceClassification` '
        "checkpoint with the same logits.",
    ]


def _reproducibility_section(
    result: StageResult, chain: Sequence[StageResult], seeds: Mapping[int, int | None]
) -> list[str]:
    records = [*chain, result]
    seed_text = ", ".join(
        f"{r.stage} {seeds[id(r)] if seeds.get(id(r)) is not None else 'not recorded'}" for r in records
    )
    versions = ", ".join(
        f"{name} {_version(dist)}"
        for name, dist in (("sec_cybert", "sec-cybert"), ("transformers", "transformers"), ("torch", "torch"))
    )
    return [
        "",
        "## Reproducibility",
        "",
        f"- seeds: {seed_text}",
        f"- versions when this card was written: {versions}, python {platform.python_version()}",
        "- stage fingerprints (config, input checkpoint, seed, contamination exclusions): "
        + ", ".join(f"{r.stage} `{r.fingerprint or 'n/a'}`" for r in records),
    ]


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


# --- pieces -----------------------------------------------------------------------------------
def _base(reference: str) -> tuple[str | None, str]:
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
                f"{key} {recipe[key]}"
                for key in ("hidden_size", "num_hidden_layers", "vocab_size")
                if key in recipe
            )
            return None, (
                f"a random-init `{recipe.get('encoder', 'encoder')}` ({shape}) with a tokenizer trained "
                f"on the run's corpus, built by sec_cybert in `{_short(path)}`"
            )
        return None, f"the local checkpoint `{_short(path)}`"
    if _HUB_ID.match(reference):
        return reference, f"[{reference}](https://huggingface.co/{reference})"
    return None, f"`{reference}`"


def _model_type(directory: Path) -> str | None:
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _seed_of(record: StageResult) -> int | None:
    """The seed a record holds (a ``seed`` field or report entry), else the one the stage's own
    card recorded when it was written (its ``sec-cybert-record`` comment, same fingerprint)."""
    for value in (getattr(record, "seed", None), record.report.get("seed")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    recorded = read_card_record(Path(record.output_dir) / CARD_FILE)
    seed = recorded.get("seed")
    if recorded.get("fingerprint") == record.fingerprint and isinstance(seed, int):
        return seed
    return None


def read_card_record(path: Path) -> dict[str, Any]:
    """The machine-readable line a card carries (stage, fingerprint, seed), ``{}`` if none."""
    text = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else ""
    match = re.search(r"^<!-- sec-cybert-record (\{.*\}) -->$", text, re.MULTILINE)
    if not match:
        return {}
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def read_front_matter(path: Path) -> dict[str, Any]:
    """The YAML front matter of a card, ``{}`` when it has none or it does not parse."""
    text = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else ""
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _variant_name(producers: Sequence[StageResult]) -> str:
    return "base" if not producers else "+" + "+".join(r.stage.upper() for r in producers)


def _corpus_text(corpus: Any, *, markup: bool = True) -> str:
    if not isinstance(corpus, Mapping):
        return str(corpus) if corpus is not None else "n/a"
    kind = corpus.get("kind", "corpus")
    location = corpus.get("path")
    plain = {"kind", "path", "text_field", "id_field", "on_bad_record"}
    options = ", ".join(f"{k}={v}" for k, v in corpus.items() if k not in plain and v is not None)
    quote = "`" if markup else ""
    where = f" {quote}{_short(location)}{quote}" if location else ""
    return f"{kind}{where}" + (f" ({options})" if options else "")


def _split_text(result: StageResult, split: str, *, markup: bool = True) -> str:
    file = result.config.get(f"{split}_file")
    examples = result.metrics.get("examples")
    count = f", {_count(examples)} examples" if examples is not None else ""
    quote = "`" if markup else ""
    return f"{split} split ({quote}{_short(file)}{quote}{count})" if file else f"{split} split{count}"


def _head_text(head: Mapping[str, Any], *, labels: bool = False) -> str:
    names = list(head.get("labels", ()))
    kind = head.get("kind", "softmax")
    text = f"{head.get('name')} ({kind}, {len(names)} {'levels' if kind in ('coral', 'thresholds') else 'labels'})"
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
            f"{_count(excluded.get('documents_removed', 0))} documents removed, "
            f"{_count(excluded.get('documents_cut', 0))} cut ({_count(excluded.get('lines_removed', 0))} lines)"
        )
    for overlap in contamination.get("overlaps") or ():
        if isinstance(overlap, Mapping):
            parts.append(
                f"{overlap.get('source')} vs {overlap.get('target')}: {_count(overlap.get('exact', 0))} exact, "
                f"{_count(overlap.get('near', 0))} near copies"
            )
    return "; ".join(parts) if parts else "no overlap checked"


def _training_text(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    training = config.get("training") or {}
    parts = []
    for key, label in (("chunker", "chunker"), ("masker", "masker")):
        component = config.get(key)
        if isinstance(component, Mapping):
            settings = ", ".join(
                f"{k} {v}" for k, v in component.items() if k in ("seq_len", "max_length", "probability") and v is not None
            )
            parts.append(f"{label} {component.get('kind')}" + (f" ({settings})" if settings else ""))
    if isinstance(training, Mapping) and training:
        length = f"max_steps {training['max_steps']}" if training.get("max_steps") else f"{training.get('num_train_epochs')} epochs"
        batch = f"batch {training.get('per_device_train_batch_size')} x {training.get('gradient_accumulation_steps')} per device"
        parts.append(
            f"{length}, {batch}, lr {training.get('learning_rate')}, {training.get('lr_scheduler_type')} schedule "
            f"(warmup {training.get('warmup_ratio')}), weights {training.get('model_dtype')}"
        )
    if metrics.get("global_step") is not None:
        parts.append(f"{_count(metrics['global_step'])} optimizer steps")
    if _finite(metrics.get("train_loss")):
        parts.append(f"train loss {_number(metrics['train_loss'])}")
    return "; ".join(parts) or "n/a"


def _outcome_text(record: StageResult) -> str:
    metrics = record.metrics
    if _finite(metrics.get("eval_loss")):
        ppl = metrics.get("eval_perplexity", _exp(metrics["eval_loss"]))
        return f"MLM eval loss {_number(metrics['eval_loss'])}, perplexity (e^loss) {_number(ppl)}"
    heads = [h for h in record.config.get("heads", ()) if isinstance(h, Mapping)]
    shown = [
        f"{h['name']} macro F1 {_number(metrics[h['name'] + '_macro_f1'])}"
        + (f", QWK {_number(metrics[h['name'] + '_qwk'])}" if _finite(metrics.get(h["name"] + "_qwk")) else "")
        for h in heads
        if _finite(metrics.get(f"{h['name']}_macro_f1"))
    ]
    if shown and metrics.get("evaluated_on"):
        return "; ".join(shown) + f" ({metrics['evaluated_on']} split)"
    return ""


def _short(path: Any) -> str:
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


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _exp(loss: Any) -> float:
    try:
        return math.exp(loss)
    except (OverflowError, TypeError):
        return math.inf


def _round(value: float) -> float:
    return round(float(value), 4)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


# --- the hub ----------------------------------------------------------------------------------
def push_to_hub(directory: Path | str, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Upload a saved directory (an MLM stage, a fine-tune, an export) to the model repo
    ``repo_id``, created private unless ``private=False``; return the commit's URL.

    Resume checkpoints and ``stage-started.json`` stay behind (``PUSH_IGNORE``); the card,
    ``stage.json`` and the training log go up. ``token`` defaults to the login of
    ``hf auth login`` or ``HF_TOKEN``. An offline machine, a missing or refused token and an
    unreachable hub are each one :class:`HubError` line.
    """
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise HubError(
            f"{directory} is not a saved model directory (no config.json); push a stage's output "
            "directory (dapt, tapt, finetune-<variant>) or an exported head"
        )
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise HubError(f"pushing to the hub needs huggingface_hub ({exc})") from None
    # The HTTP client's own error class (httpx, httpx2 or requests, by huggingface_hub version):
    # a connection that failed before the hub answered.
    transport = tuple(c for c in HfHubHTTPError.__bases__ if not issubclass(c, OSError))

    where = f"cannot push {directory} to the Hugging Face Hub repo {repo_id}"
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(directory),
            commit_message=f"Upload {directory.name} (sec_cybert)",
            ignore_patterns=list(PUSH_IGNORE),
        )
    except OfflineModeIsEnabled:
        raise HubError(f"{where}: offline mode is on (HF_HUB_OFFLINE); push from a machine with network access") from None
    except LocalTokenNotFoundError:
        raise HubError(f"{where}: not logged in; run `hf auth login`, set HF_TOKEN, or pass token=") from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            reason = "the hub refused the token (401); run `hf auth login` or set HF_TOKEN to a valid token"
        elif status == 403:
            reason = "the token may not write there (403); use a token with write access to that namespace"
        else:
            reason = f"the hub answered {status or 'an error'}: {_first_line(exc)}"
        raise HubError(f"{where}: {reason}") from None
    except (*transport, ConnectionError, TimeoutError) as exc:
        raise HubError(f"{where}: the hub is unreachable ({type(exc).__name__}: {_first_line(exc)}); check the network") from None
    return str(getattr(commit, "commit_url", None) or getattr(commit, "repo_url", None) or repo_id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
