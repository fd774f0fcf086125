"""Model cards for the directories a run saves.

Every MLM stage output and every fine-tune output gets a ``README.md`` in the hub's format,
rendered by huggingface_hub's ``ModelCard.from_template`` from ``templates/model_card.md``: YAML
front matter (``library_name``, ``base_model`` when the chain starts from a hub model,
``pipeline_tag``, ``tags``, and a ``model-index`` with the stage's measured results, built by
``ModelCardData`` and ``EvalResult``) and a body that walks the chain back to the base -- each
stage with its corpus, what it kept, the copies it dropped, what the contamination check
removed, its budget and its result -- then the seeds, the library versions and how to load the
directory.

The host writes the card after ``stage.json`` (:func:`write_model_card`); everything it says
comes from the stage records (:class:`~sec_cybert.core.context.StageResult`), so a card can be
rewritten at any time from a finished run::

    from sec_cybert.sharing.modelcard import stage_chain, write_model_card
    from sec_cybert.stages import StageResult

    result = StageResult.load("runs/x/finetune-dapt-tapt")
    write_model_card(result, stage_chain(result))

An ablation later adds its own ``## Ablation`` section to each fine-tune's card
(:meth:`sec_cybert.results.ablation.AblationTable.annotate_cards`).
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sec_cybert.core.context import StageResult
from sec_cybert.core.files import write_text_atomic
from sec_cybert.core.lineage import variant_chain
from sec_cybert.sharing import card_text
from sec_cybert.sharing.card_metadata import card_data, metric_rows
from sec_cybert.sharing.card_text import ORDINAL_KINDS, exp, finite, number, short

CARD_FILE = "README.md"
TEMPLATE = "model_card.md"


def stage_chain(result: StageResult) -> list[StageResult]:
    """The records of the variant-producing stages (DAPT, TAPT) that led to ``result``'s input,
    oldest first, read from their ``stage.json`` (:func:`sec_cybert.core.lineage.variant_chain`)."""
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
    (:func:`sec_cybert.sharing.export.export_head`) of the fine-tune ``result``; ``name`` titles the card
    (by default the output directory's name)."""
    from huggingface_hub import ModelCard

    from sec_cybert.core.version import __version__

    out = Path(result.output_dir)
    chain = [r for r in chain if Path(r.output_dir) != out]
    records = [*chain, result]
    base_id, base_text = card_text.base_description(chain[0].init_from if chain else result.init_from)
    model_type = card_text.model_type(out)
    heads = [h for h in result.config.get("heads", ()) if isinstance(h, Mapping)]
    if export_head is not None:
        heads = [h for h in heads if h.get("name") == export_head]
    seeds = [_seed_of(r) for r in chain] + [seed if seed is not None else _seed_of(result)]
    name = name or out.name
    kind = "mlm" if result.produces_variant else "export" if export_head is not None else "finetune"
    record = {"stage": result.stage, "kind": result.kind, "fingerprint": result.fingerprint, "seed": seeds[-1]}
    if export_head is not None:
        record["exported_head"] = export_head

    metadata = card_data(
        result, chain, name=name, base_model=base_id, model_type=model_type, heads=heads, export_head=export_head
    )
    template = resources.files("sec_cybert.sharing").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    card = ModelCard.from_template(
        metadata,
        template_str=template,
        name=name,
        kind=kind,
        arch=model_type or "transformers",
        variant=card_text.variant_name(chain + ([result] if result.produces_variant else [])),
        stage=result.stage,
        export_head=export_head,
        head_names=[h["name"] for h in heads],
        source=short(result.output_dir),
        base=base_text,
        stage_names=["base", *(r.stage for r in records)],
        version=__version__,
        stages=[
            {"name": r.stage, "kind": r.kind, "input": short(r.init_from), "items": card_text.stage_items(r, s)}
            for r, s in zip(records, seeds, strict=True)
        ],
        show_results=bool(heads) or result.produces_variant,
        **(_pretraining_results(result) if result.produces_variant else _head_results(result, heads)),
        thresholds=len(heads[0].get("labels", ())) - 1 if heads and heads[0].get("kind") in ORDINAL_KINDS else None,
        seeds=", ".join(f"{r.stage} {s if s is not None else 'not recorded'}" for r, s in zip(records, seeds, strict=True)),
        versions=_versions(),
        fingerprints=", ".join(f"{r.stage} `{r.fingerprint or 'n/a'}`" for r in records),
        record=json.dumps(record, sort_keys=True),
    )
    return str(card).rstrip() + "\n"


def _pretraining_results(result: StageResult) -> dict[str, Any]:
    loss = result.metrics.get("eval_loss")
    if not finite(loss):
        return {"loss": None}
    return {"loss": number(loss), "perplexity": number(result.metrics.get("eval_perplexity", exp(loss)))}


def _head_results(result: StageResult, heads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The numbers of the results table, the per-class F1 tables and the heads that collapsed."""
    split = result.metrics.get("evaluated_on")
    if not split:
        return {"split": None}
    metrics = result.metrics
    rows = [
        (head["name"], head.get("kind", "softmax"), label, number(metrics[f"{head['name']}_{suffix}"]))
        for head in heads
        for suffix, _type, label, _args in metric_rows(head)
        if metrics.get(f"{head['name']}_{suffix}") is not None
    ]
    per_class = []
    for head in heads:
        scores = metrics.get(f"{head['name']}_per_class_f1")
        if isinstance(scores, Mapping):
            order = [label for label in head.get("labels", ()) if label in scores]
            order += [label for label in scores if label not in order]
            shown = [(label, number(scores[label]) if scores[label] is not None else "absent from the split") for label in order]
            per_class.append((head["name"], shown))
    collapsed = [
        (head["name"], ", ".join(map(str, metrics[f"{head['name']}_collapsed_to"])))
        for head in heads
        if metrics.get(f"{head['name']}_collapsed_to")
    ]
    return {
        "split": card_text.split_text(result, split),
        "rows": rows,
        "per_class": per_class,
        "collapsed": collapsed,
    }


def _versions() -> str:
    from importlib import metadata

    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "unknown"

    named = (("sec_cybert", "sec-cybert"), ("transformers", "transformers"), ("torch", "torch"))
    return ", ".join(f"{name} {version(dist)}" for name, dist in named) + f", python {platform.python_version()}"


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
