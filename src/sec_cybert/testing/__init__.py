"""Helpers our own tests use, public for plugin authors: tiny corpora, tiny models, CPU settings.

    from sec_cybert.testing import write_tiny_corpus, tiny_pipeline_config, requires_gpu

A model built by hand, with no tokenizer: ``tiny_modernbert_config(**overrides)``.

Everything here is offline and CPU-sized: corpora are written from a few sentences, models are
random-init with a tokenizer trained on the fly. The demo corpus's generator, for other seeds and
sizes than the copy ``sec-cybert demo`` ships, is :mod:`sec_cybert.testing.demo_corpus`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS


def requires_gpu(test: Any) -> Any:
    """Mark a test ``requires_gpu`` and skip it where no CUDA device is visible."""
    import pytest
    import torch

    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    return pytest.mark.requires_gpu(skip(test))


_TOPIC_SENTENCES = {
    "Board Governance": "The audit committee of the board oversees cybersecurity risk and receives quarterly briefings.",
    "Management Role": "Our chief information security officer leads the security team and reports to the chief executive.",
    "Risk Management Process": "We assess vulnerabilities, monitor systems and test our incident response plan each year.",
    "Third-Party Risk": "Vendors and service providers are assessed before onboarding and monitored during the contract.",
    "Incident Disclosure": "We detected unauthorized access to a file server, contained the incident and notified regulators.",
    "Strategy Integration": "Cybersecurity threats have not materially affected our strategy, results of operations or finances.",
    "None/Other": "This section contains forward-looking statements that involve risks and uncertainties.",
}
_SPECIFICITY_ADDITIONS = (
    "",
    " As a regional bank we protect customer account data and payment systems.",
    " The Cyber Risk Committee and our Security Operations Center run this program.",
    " In 2024 we trained 1,250 employees and completed 14 tabletop exercises under NIST CSF 2.0.",
)


@attrs.frozen
class TinyCorpus:
    """Paths of a tiny corpus: filing shards, paragraphs, and labeled train/eval/holdout files."""

    shards: Path
    paragraphs: Path
    train: Path
    eval: Path
    holdout: Path


#: Words that make each tiny paragraph its own: without them every paragraph of a cell would be
#: a near-duplicate of the others, and the contamination check would (rightly) refuse the files.
_FILLER = ["systems", "data", "network", "controls", "staff", "policies", "partners", "reviews", "audits", "threats", "alerts", "patches", "backups", "access", "logs", "training", "exercises", "insurance", "budget", "roadmap", "cloud", "endpoints", "suppliers", "contracts", "regulators", "customers", "facilities", "plans", "metrics", "dashboards", "findings"]


def labeled_paragraphs(n_per_cell: int, seed: int) -> list[dict[str, Any]]:
    """``n_per_cell`` labeled paragraphs per (category, specificity) cell, shuffled.

    Each paragraph ends in a dozen words drawn for it alone, so paragraphs of different seeds
    are never near-duplicates of one another (Jaccard of word 3-grams well below 0.8).
    """
    rng = random.Random(seed)
    records = []
    for category in CATEGORIES:
        for level, specificity in enumerate(SPECIFICITY_LEVELS):
            for i in range(n_per_cell):
                filler = " ".join(rng.choice(_FILLER) for _ in range(14))
                text = (
                    _TOPIC_SENTENCES[category]
                    + _SPECIFICITY_ADDITIONS[level]
                    + f" Paragraph {seed}-{i} covers {filler}."
                )
                records.append(
                    {
                        "id": f"p{seed}-{category[:4]}-{level}-{i}",
                        "text": text,
                        "category": category,
                        "specificity": specificity,
                    }
                )
    rng.shuffle(records)
    return records


#: The vocabulary of :func:`random_paragraphs`: Item 1C words, so a tokenizer trained on them
#: splits them the way it splits the real ones (whole words and a few pieces).
PARAGRAPH_WORDS = ["the", "board", "audit", "committee", "oversees", "cybersecurity", "risk", "and", "our", "chief", "information", "security", "officer", "reports", "quarterly", "on", "incidents", "vendors", "assessments", "penetration", "tests", "tabletop", "exercises", "NIST", "CSF"]


def random_paragraphs(n: int, seed: int, *, low: int = 4, high: int = 40) -> list[str]:
    """``n`` paragraphs ``Paragraph i. w w w.`` of ``low`` to ``high`` random words each, by ``seed``:
    documents of known, varied lengths for packing and masking tests."""
    import random

    rng = random.Random(seed)
    return [
        f"Paragraph {i}. " + " ".join(rng.choice(PARAGRAPH_WORDS) for _ in range(rng.randint(low, high))) + "."
        for i in range(n)
    ]


#: The vocabulary of :func:`filing_records` and the tokenizer the cache tests train on it.
FILING_WORDS = ("audit", "committee", "cybersecurity", "risk", "vendor", "incident", "board", "officer", "program")


def filing_records(n: int = 8, seed: int = 1, *, first_line_end: str = " ") -> list[dict[str, Any]]:
    """``n`` JSONL filing records of growing length (20 + 9i words), one filing date per year
    from 2010 and three companies (``cik``): a corpus whose newest-first order and token counts
    a test can work out by hand. ``first_line_end`` follows the ``Filing i.`` line."""
    import random

    rng = random.Random(seed)
    return [
        {
            "id": f"filing-{i}",
            "text": f"Filing {i}.{first_line_end}" + " ".join(rng.choice(FILING_WORDS) for _ in range(20 + 9 * i)) + ".",
            "metadata": {"filing_date": f"20{10 + i}-03-01", "cik": str(100 + i % 3)},
        }
        for i in range(n)
    ]


def document_spans(position_ids: list[int]) -> list[tuple[int, int]]:
    """``(start, end)`` of each document in a packed row: a document starts where its positions
    restart at 0 (padding after the last one counts as part of it)."""
    starts = [i for i, p in enumerate(position_ids) if p == 0] + [len(position_ids)]
    return list(zip(starts, starts[1:], strict=False))


def loss_of_each_document_alone(checkpoint: str, validation: Any) -> tuple[float, int]:
    """Mean cross-entropy over every masked target of a packed, premasked ``validation`` set,
    each document run through ``checkpoint`` on its own (no packing, no document mask): what a
    packed evaluation must equal. Returns ``(mean loss, targets)``."""
    import torch
    from transformers import AutoModelForMaskedLM

    from sec_cybert.datapath.masking import IGNORE_INDEX

    model = AutoModelForMaskedLM.from_pretrained(checkpoint).eval()
    total, targets = 0.0, 0
    with torch.no_grad():
        for row in validation:
            for a, b in document_spans(row["position_ids"]):
                labels = torch.tensor(row["labels"][a:b])
                chosen = labels != IGNORE_INDEX
                if chosen.any():
                    logits = model(input_ids=torch.tensor([row["input_ids"][a:b]])).logits[0]
                    total += float(torch.nn.functional.cross_entropy(logits[chosen], labels[chosen], reduction="sum"))
                    targets += int(chosen.sum())
    return (total / targets if targets else float("nan")), targets


def packed_and_alone_logits(model: Any, collate: Any, features: list[dict[str, Any]], device: str) -> tuple[Any, Any]:
    """The packed logits of ``features`` collated by ``collate`` (a ``MaskingCollator`` with the
    model's ``DocumentAttention``), and of each of their documents run alone, concatenated in the
    same order: equal when packing keeps documents apart. The packed logits are the batch's first
    row: every feature when ``flash_attention_2`` flattens the batch, else pass one feature."""
    import torch

    batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in collate(features).items()}
    with torch.no_grad():
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        alone = torch.cat(
            [
                model(input_ids=torch.tensor([f["input_ids"][a:b]], device=device)).logits[0]
                for f in features
                for a, b in document_spans(f["position_ids"])
            ]
        )
    return packed, alone


def packing_tokenizer() -> Any:
    """The packing tests' tokenizer: a 600-token BPE over random paragraphs, ids [UNK] 0,
    [CLS] 1, [SEP] 2, [PAD] 3, [MASK] 4."""
    from sec_cybert.core.encoders import train_bpe_tokenizer

    return train_bpe_tokenizer(random_paragraphs(60, seed=1, low=4, high=40), vocab_size=600, model_max_length=512)


def premasked_rows(rows: Iterable[dict[str, Any]], mask_token_id: int, seed: int) -> list[dict[str, Any]]:
    """Packed rows with ~30 % of their tokens turned into the mask token and a label on every
    non-special token (``word_ids`` >= 0): every such position's loss can be compared."""
    import torch

    from sec_cybert.datapath.masking import IGNORE_INDEX

    rng = torch.Generator().manual_seed(seed)
    features = []
    for row in rows:
        ids, words = torch.tensor(row["input_ids"]), torch.tensor(row["word_ids"])
        corrupt = (torch.rand(ids.shape, generator=rng) < 0.3) & (words >= 0)
        features.append(
            {
                "input_ids": ids.masked_fill(corrupt, mask_token_id).tolist(),
                "labels": torch.where(words >= 0, ids, torch.full_like(ids, IGNORE_INDEX)).tolist(),
                "position_ids": row["position_ids"],
            }
        )
    return features


def token_losses(logits: Any, labels: Any) -> Any:
    """Each position's cross-entropy (ignored labels give 0), in float32."""
    import torch

    return torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")


def each_document_alone(model: Any, features: list[dict[str, Any]], logits_of: Any) -> tuple[Any, Any, dict[str, Any]]:
    """What packed ``features`` must compute: each of their documents run alone through
    ``logits_of(ids)`` (its logits, one row), then the target tokens' losses and logits, in the
    rows' order, and ``model``'s gradients of the summed losses (zeroed first)."""
    import torch

    from sec_cybert.datapath.masking import IGNORE_INDEX

    losses, logits = [], []
    model.zero_grad()
    for feature in features:
        for start, end in document_spans(feature["position_ids"]):
            labels = torch.tensor(feature["labels"][start:end])
            alone = logits_of(feature["input_ids"][start:end])
            targets = labels != IGNORE_INDEX
            loss = token_losses(alone, labels.clamp(min=0))[targets]
            loss.sum().backward()
            losses.append(loss.detach())
            logits.append(alone.detach()[targets])
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return torch.cat(losses), torch.cat(logits), grads


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


def write_tiny_corpus(root: Path, *, documents: int = 12, n_per_cell: int = 2) -> TinyCorpus:
    """A corpus small enough for a few training steps in seconds."""
    root = Path(root)
    sentences = list(_TOPIC_SENTENCES.values()) + list(_SPECIFICITY_ADDITIONS[1:])
    rng = random.Random(0)
    filings = [
        {
            "id": f"0000000000-2{i % 3 + 3}-{i:06d}",
            "text": " ".join(rng.choice(sentences) for _ in range(40)),
            "metadata": {
                "filing_date": f"202{i % 3 + 3}-0{i % 9 + 1}-15",
                "cik": str(1000 + i),
                "form": "10-K",
            },
        }
        for i in range(documents)
    ]
    shards = root / "shards"
    write_jsonl(shards / "shard-00000.jsonl", filings[: documents // 2])
    write_jsonl(shards / "shard-00001.jsonl", filings[documents // 2 :])
    paragraphs = write_jsonl(
        root / "paragraphs.jsonl", [{"id": r["id"], "text": r["text"]} for r in labeled_paragraphs(1, 99)]
    )
    return TinyCorpus(
        shards=shards,
        paragraphs=paragraphs,
        train=write_jsonl(root / "labels" / "train.jsonl", labeled_paragraphs(n_per_cell, 1)),
        eval=write_jsonl(root / "labels" / "eval.jsonl", labeled_paragraphs(1, 2)),
        holdout=write_jsonl(root / "labels" / "holdout.jsonl", labeled_paragraphs(1, 3)),
    )


TINY_ENCODER_OPTIONS = {
    "vocab_size": 512,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
}

TINY_TRAINING = {
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_steps": 3,
    "learning_rate": 1.0e-3,
    "logging_steps": 1,
    "save_strategy": "steps",
    "save_steps": 2,
    "save_total_limit": 2,
}


def tiny_modernbert_config(*, attn_implementation: str | None = None, **overrides: Any) -> Any:
    """The tiny ModernBERT config of the unit tests that build a model by hand (no tokenizer).

    One layer, 32 wide, 128 token ids with ``[PAD]`` 0, ``[CLS]`` 1 and ``[SEP]`` 2; every
    keyword of ``ModernBertConfig`` may be overridden. ``attn_implementation`` (``"eager"``,
    ``"sdpa"``) is set on the config, as ``from_pretrained`` would.
    """
    from transformers import ModernBertConfig

    options: dict[str, Any] = {
        "vocab_size": 128,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        "pad_token_id": 0,
        "cls_token_id": 1,
        "sep_token_id": 2,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    config = ModernBertConfig(**{**options, **overrides})
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    return config


def tiny_pipeline_config(corpus: TinyCorpus, *, finetune: bool = True, **overrides: Any) -> dict[str, Any]:
    """A pipeline config dict (as YAML would give) for DAPT -> TAPT -> fine-tune in seconds on a CPU."""
    stages: list[dict[str, Any]] = [
        {
            "kind": "mlm",
            "name": "dapt",
            "corpus": {"kind": "jsonl-shards", "path": str(corpus.shards)},
            "chunker": {"kind": "concat", "seq_len": 64},
            "masker": {"kind": "token", "probability": 0.3},
            "validation_split": 0.1,
            "training": dict(TINY_TRAINING),
        },
        {
            "kind": "mlm",
            "name": "tapt",
            "corpus": {"kind": "paragraphs", "path": str(corpus.paragraphs)},
            "chunker": {"kind": "paragraph", "max_length": 64},
            "masker": {"kind": "whole-word", "probability": 0.3},
            "validation_split": 0.1,
            "training": dict(TINY_TRAINING),
        },
    ]
    if finetune:
        stages.append(
            {
                "kind": "finetune",
                "name": "finetune",
                "train_file": str(corpus.train),
                "eval_file": str(corpus.eval),
                "holdout_file": str(corpus.holdout),
                "max_length": 64,
                "heads": [
                    {"name": "category", "kind": "softmax", "labels": list(CATEGORIES)},
                    {"name": "specificity", "kind": "coral", "labels": list(SPECIFICITY_LEVELS)},
                ],
                "training": {
                    **TINY_TRAINING,
                    "save_strategy": "epoch",
                    "max_steps": None,
                    "num_train_epochs": 1,
                },
            }
        )
    config = {
        "encoder": "tiny-modernbert",
        "encoder_options": dict(TINY_ENCODER_OPTIONS),
        "hardware": "cpu",
        "seed": 7,
        "stages": stages,
    }
    config.update(overrides)
    return config


def builtin_plugin_manager() -> Any:
    """A fresh plugin manager holding only the built-in plugins (no third-party entry points)."""
    from sec_cybert.plugins.registry import load_entry_point_plugins, new_plugin_manager

    pm = new_plugin_manager()
    load_entry_point_plugins(pm, allowed=[])
    return pm
