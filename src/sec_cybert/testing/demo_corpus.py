"""A small synthetic corpus, written from this project's own templates, for ``sec-cybert demo``.

It produces three things the pipeline consumes:

* filing-like 10-K documents (JSONL shards) for domain-adaptive pretraining,
* the unlabeled Item 1C paragraphs of those filings for task-adaptive pretraining,
* labeled paragraphs (category x specificity, see :mod:`sec_cybert.core.taxonomy`) split into
  train / eval / holdout.

Nothing here is real: companies, people, firms and numbers are invented, and the prose comes from
``sec_cybert/data/demo/*.yaml``. The corpus exists to smoke-test the pipeline end to end in
minutes; it supports no research conclusion. Output is a pure function of ``seed`` and ``size``:
every random choice is drawn from ``random.Random`` instances seeded from them, so two writes
produce the same bytes.

``sec-cybert demo`` does not run this: it unpacks the copy shipped as package data
(:mod:`sec_cybert.testing.demo_data`), which :func:`write_shipped_copy` writes. After editing the
templates or this generator, run ``python -m sec_cybert.testing.demo_corpus`` to rewrite it;
``tests/test_demo_corpus.py`` fails until the two agree.
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from random import Random
from typing import Any

import attrs

from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS
from sec_cybert.corpus.dedup import NearDuplicateIndex
from sec_cybert.errors import DataError
from sec_cybert.testing.demo_data import SHIPPED_DIR, SHIPPED_SEED, DemoCorpus
from sec_cybert.testing.demo_filings import FILING_DATE_RANGE, Filing, make_filings
from sec_cybert.testing.demo_text import Slots, render, templates, word_count

__all__ = [
    "DemoCorpus",
    "DemoSize",
    "write_demo_corpus",
    "write_shipped_copy",
    "PARAGRAPH_WORDS",
    "FILING_DATE_RANGE",
]

PARAGRAPH_WORDS: tuple[int, int] = (30, 150)
SPLITS: tuple[str, ...] = ("train", "eval", "holdout")

# Canonical Item 1C order: process-and-strategy disclosures first, governance last, as filers do.
_ITEM1C_PLAN: tuple[str, ...] = (
    "None/Other",
    "Risk Management Process",
    "Risk Management Process",
    "Third-Party Risk",
    "Incident Disclosure",
    "Strategy Integration",
    "Board Governance",
    "Board Governance",
    "Management Role",
    "Management Role",
)
_GOVERNANCE = frozenset({"Board Governance", "Management Role"})
_MAX_ATTEMPTS = 200
_LABELED_ISSUERS = 60
# Chance, per own sentence beyond the first, of borrowing one off-topic sentence; without it a bag of words
# separates the categories perfectly and the demo's fine-tuning has nothing to learn.
_BORROW_PROBABILITY = 0.5


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen
class DemoSize:
    """How much to generate. The defaults fit ``sec-cybert demo``'s 5-minute CPU budget.

    Document lengths are a target: each filing aims at a word count drawn from
    ``[dapt_min_words, dapt_max_words]`` and stays inside it as long as its mandatory sections
    (about 1,000-1,700 words with ten Item 1C paragraphs) fit.
    """

    dapt_documents: int = attrs.field(default=60, validator=[attrs.validators.instance_of(int), _positive])
    dapt_min_words: int = attrs.field(default=1500, validator=[attrs.validators.instance_of(int), _positive])
    dapt_max_words: int = attrs.field(default=4000, validator=[attrs.validators.instance_of(int), _positive])
    documents_per_shard: int = attrs.field(
        default=20, validator=[attrs.validators.instance_of(int), _positive]
    )
    tapt_paragraphs: int = attrs.field(default=600, validator=[attrs.validators.instance_of(int), _positive])
    train_per_cell: int = attrs.field(default=20, validator=[attrs.validators.instance_of(int), _positive])
    eval_per_cell: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), _positive])
    holdout_per_cell: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), _positive])

    @dapt_max_words.validator
    def _max_above_min(self, attribute: attrs.Attribute, value: int) -> None:
        # A margin lets the filler paragraphs (up to ~150 words) land inside the range.
        if value < self.dapt_min_words + 300:
            raise ValueError(
                f"dapt_max_words ({value}) must be at least dapt_min_words + 300 "
                f"({self.dapt_min_words + 300})"
            )

    def per_cell(self, split: str) -> int:
        return {"train": self.train_per_cell, "eval": self.eval_per_cell, "holdout": self.holdout_per_cell}[
            split
        ]


# --------------------------------------------------------------------------------------------
# Item 1C paragraphs


def _paragraph(rng: Random, slots: Slots, category: str, level: int, avoid: set[str] | None = None) -> str:
    """One paragraph of ``category`` whose most specific sentence is at ``level``.

    One sentence comes from the paragraph's own cell; the rest from the same category at or below
    that level, which keeps specificity a matter of the *most* specific fact present. Sometimes one
    sentence is borrowed from another category (never above ``level``), as real paragraphs drift
    between topics; the paragraph's own category always keeps the majority of its sentences.
    """
    item1c = templates().item1c
    own = list(item1c[category][SPECIFICITY_LEVELS[level]])
    pool = _up_to(item1c[category], level)
    avoid = set() if avoid is None else avoid
    for _ in range(_MAX_ATTEMPTS):
        fresh_own = [t for t in own if t not in avoid] or own
        anchor = rng.choice(fresh_own)
        others = [t for t in pool if t != anchor and t not in avoid] or [t for t in pool if t != anchor]
        chosen = rng.sample(others, min(len(others), rng.choice((1, 2, 2, 3))))
        chosen.insert(rng.randint(0, len(chosen)), anchor)
        # Borrow fewer sentences than the paragraph has of its own, so its category stays the majority.
        borrowed = sum(rng.random() < _BORROW_PROBABILITY for _ in range(len(chosen) - 1))
        for donor in rng.sample([c for c in CATEGORIES if c != category], borrowed):
            chosen.insert(rng.randint(0, len(chosen)), rng.choice(_up_to(item1c[donor], level)))
        text = " ".join(render(template, rng, slots) for template in chosen)
        if PARAGRAPH_WORDS[0] <= word_count(text) <= PARAGRAPH_WORDS[1]:
            avoid.update(chosen)
            return text
    raise DataError(f"demo templates cannot make a {PARAGRAPH_WORDS}-word paragraph for {category} / {level}")


def _up_to(cells: Mapping[str, Sequence[str]], level: int) -> list[str]:
    return [t for lower in SPECIFICITY_LEVELS[: level + 1] for t in cells[lower]]


def _item1c_plan(rng: Random, count: int) -> list[str]:
    if count <= len(_ITEM1C_PLAN):
        return [_ITEM1C_PLAN[i] for i in sorted(rng.sample(range(len(_ITEM1C_PLAN)), count))]
    extra = [rng.choice(_ITEM1C_PLAN) for _ in range(count - len(_ITEM1C_PLAN))]
    order = {category: i for i, category in enumerate(_ITEM1C_PLAN)}
    return sorted([*_ITEM1C_PLAN, *extra], key=order.__getitem__)


def _item1c_sections(
    rng: Random, filings: Sequence[Filing], total: int, seen: NearDuplicateIndex
) -> list[list[tuple[str, str]]]:
    """For each filing, its Item 1C paragraphs as (category, text); ``total`` paragraphs overall."""
    counts = [total // len(filings) + (1 if i < total % len(filings) else 0) for i in range(len(filings))]
    sections: list[list[tuple[str, str]]] = []
    for filing, count in zip(filings, counts, strict=True):
        slots = Slots(rng, filing.context)
        style = int(filing.context["style"])
        avoid: set[str] = set()
        section = []
        for category in _item1c_plan(rng, max(count, 1)):
            level = min(3, max(0, style + rng.choice((-1, 0, 0, 1))))
            text = _unique(functools.partial(_paragraph, rng, slots, category, level, avoid), seen)
            section.append((category, text))
        sections.append(section)
    return sections


def _unique(make: Callable[[], str], seen: NearDuplicateIndex) -> str:
    """A paragraph that is neither a copy nor a near copy of any paragraph made before, so the
    demo's splits pass the contamination check the way a real split by company would."""
    for _ in range(_MAX_ATTEMPTS):
        text = make()
        if not seen.find(text):
            seen.add(None, text)
            return text
    raise DataError("demo templates are too few to produce the requested number of distinct paragraphs")


def _labeled(rng: Random, split: str, per_cell: int, seen: NearDuplicateIndex) -> list[dict[str, str]]:
    issuers = make_filings(rng, _LABELED_ISSUERS)  # fictional filers the paragraphs pretend to come from
    rows = []
    for category in CATEGORIES:
        for level, specificity in enumerate(SPECIFICITY_LEVELS):
            for _ in range(per_cell):
                issuer = rng.choice(issuers)
                slots = Slots(rng, issuer.context)
                text = _unique(functools.partial(_paragraph, rng, slots, category, level), seen)
                # Where the paragraph "comes from", as `corpus item1c` records it: what
                # `sec-cybert split --by company|filing` groups by.
                source = {key: issuer.metadata[key] for key in ("cik", "company", "accession", "fiscal_year")}
                rows.append({"text": text, "category": category, "specificity": specificity, **source})
    rng.shuffle(rows)
    return [{"id": f"demo-{split}-{i:05d}", **row} for i, row in enumerate(rows)]


# --------------------------------------------------------------------------------------------
# Filing documents


def _render_all(sources: Iterable[str], rng: Random, slots: Slots) -> list[str]:
    return [render(t, rng, slots) for t in sources]


def _document(rng: Random, filing: Filing, item1c: Sequence[tuple[str, str]], size: DemoSize) -> str:
    spec = templates().filing
    slots = Slots(rng, filing.context)
    head = [*_render_all(spec["cover"], rng, slots), "PART I", spec["item1"]["heading"]]
    head += _render_all(spec["item1"]["paragraphs"], rng, slots)
    risk_intro = [spec["item1a"]["heading"], render(spec["item1a"]["intro"], rng, slots)]
    cyber = [spec["item1b"]["heading"], *spec["item1b"]["paragraphs"], spec["item1c"]["heading"]]
    cyber += _item1c_blocks(spec["item1c"], item1c)
    middle = []
    for key in ("item2", "item3"):
        middle += [spec[key]["heading"], *_render_all(spec[key]["paragraphs"], rng, slots)]
    middle += ["Item 4. Mine Safety Disclosures", "Not applicable.", "PART II"]
    middle += [spec["item5"]["heading"], *_render_all(spec["item5"]["paragraphs"], rng, slots)]
    mdna = [spec["item7"]["heading"], *_render_all(spec["item7"]["paragraphs"], rng, slots)]
    tail = [spec["item7a"]["heading"], *_render_all(spec["item7a"]["paragraphs"], rng, slots)]

    risk_factors = [
        f"{render(rf['heading'], rng, slots)}\n{render(rf['body'], rng, slots)}"
        for rf in spec["item1a"]["risk_factors"]
    ]
    extras = _render_all(spec["item7"]["extra"], rng, slots)
    used = sum(word_count(b) for b in (*head, *risk_intro, *cyber, *middle, *mdna, *tail))
    chosen_rf, chosen_extra = _fill(rng, used, risk_factors, extras, size)
    blocks = [*head, *risk_intro, *chosen_rf, *cyber, *middle, *mdna[:3], *chosen_extra, *mdna[3:], *tail]
    return "\n\n".join(blocks)


def _item1c_blocks(spec: Mapping[str, str], paragraphs: Sequence[tuple[str, str]]) -> list[str]:
    blocks: list[str] = []
    in_governance = None
    for category, text in paragraphs:
        governance = category in _GOVERNANCE
        if governance != in_governance:
            blocks.append(spec["governance_heading"] if governance else spec["risk_heading"])
            in_governance = governance
        blocks.append(text)
    return blocks


def _fill(
    rng: Random, used: int, risk_factors: Sequence[str], extras: Sequence[str], size: DemoSize
) -> tuple[list[str], list[str]]:
    """Pick risk factors, then MD&A paragraphs, until the document reaches a drawn word target.

    Picks keep their template order, so a filing reads in a stable, plausible sequence.
    """
    target = rng.randint(size.dapt_min_words, size.dapt_max_words)
    picked: dict[str, set[int]] = {"rf": set(), "extra": set()}
    candidates = [("rf", i) for i in rng.sample(range(len(risk_factors)), len(risk_factors))]
    candidates += [("extra", i) for i in rng.sample(range(len(extras)), len(extras))]
    # The second pass only runs if the target left the document short of the minimum.
    for limit in (target, size.dapt_max_words):
        for kind, index in candidates:
            words = word_count((risk_factors if kind == "rf" else extras)[index])
            if index not in picked[kind] and used + words <= limit:
                picked[kind].add(index)
                used += words
        if used >= size.dapt_min_words:
            break
    return [risk_factors[i] for i in sorted(picked["rf"])], [extras[i] for i in sorted(picked["extra"])]


# --------------------------------------------------------------------------------------------
# Writing


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_shards(dapt_dir: Path, documents: Sequence[Mapping[str, Any]], per_shard: int) -> None:
    dapt_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for index, chunk in enumerate(_chunks(documents, per_shard)):
        path = dapt_dir / f"shard-{index:05d}.jsonl"
        _write_jsonl(path, chunk)
        written.add(path)
    # A previous, larger write would otherwise leave shards that change what a reader sees.
    for stale in dapt_dir.glob("shard-*.jsonl"):
        if stale not in written:
            stale.unlink()


def write_demo_corpus(out_dir: Path, *, seed: int = 0, size: DemoSize = DemoSize()) -> DemoCorpus:
    """Write the demo corpus under ``out_dir`` and return where each part is.

    Layout: ``dapt/shard-NNNNN.jsonl`` (filings), ``tapt/paragraphs.jsonl`` (their unlabeled Item 1C
    paragraphs) and ``labeled/{train,eval,holdout}.jsonl``. Existing files are overwritten, so
    writing twice gives identical bytes. No paragraph appears twice anywhere in the corpus, not
    even as a near copy (:mod:`sec_cybert.corpus.dedup`'s defaults), so eval and holdout never
    repeat a train or TAPT text.
    """
    out_dir = Path(out_dir)
    seen = NearDuplicateIndex()  # the contamination check's own defaults
    filings = make_filings(Random(f"demo:{seed}:filings"), size.dapt_documents)
    sections = _item1c_sections(Random(f"demo:{seed}:item1c"), filings, size.tapt_paragraphs, seen)

    doc_rng = Random(f"demo:{seed}:documents")
    documents = []
    paragraphs = []
    for filing, section in zip(filings, sections, strict=True):
        doc_id = f"demo-10k-{filing.metadata['cik']}-{filing.metadata['fiscal_year']}"
        text = _document(doc_rng, filing, section, size)
        documents.append({"id": doc_id, "text": text, "metadata": dict(filing.metadata)})
        for index, (_, paragraph) in enumerate(section):
            metadata = {**filing.metadata, "section": "Item 1C", "paragraph_index": index}
            paragraphs.append({"id": f"{doc_id}-p{index:02d}", "text": paragraph, "metadata": metadata})
    paragraphs = paragraphs[: size.tapt_paragraphs]  # filings with no share still got one paragraph

    labeled = {
        split: _labeled(Random(f"demo:{seed}:{split}"), split, size.per_cell(split), seen) for split in SPLITS
    }

    dapt_dir = out_dir / "dapt"
    _write_shards(dapt_dir, documents, size.documents_per_shard)
    (out_dir / "tapt").mkdir(parents=True, exist_ok=True)
    (out_dir / "labeled").mkdir(parents=True, exist_ok=True)
    paragraphs_file = out_dir / "tapt" / "paragraphs.jsonl"
    _write_jsonl(paragraphs_file, paragraphs)
    files = {split: out_dir / "labeled" / f"{split}.jsonl" for split in SPLITS}
    for split, rows in labeled.items():
        _write_jsonl(files[split], rows)
    return DemoCorpus(
        root=out_dir,
        dapt_dir=dapt_dir,
        paragraphs_file=paragraphs_file,
        train_file=files["train"],
        eval_file=files["eval"],
        holdout_file=files["holdout"],
        n_documents=len(documents),
        n_paragraphs=len(paragraphs),
        n_train=len(labeled["train"]),
        n_eval=len(labeled["eval"]),
        n_holdout=len(labeled["holdout"]),
    )


def write_shipped_copy(dest: Path | None = None) -> Path:
    """Write the corpus ``sec-cybert demo`` unpacks (seed 0, default size), one ``.jsonl.gz`` per
    file, into ``dest`` (default: this package's ``data/demo/corpus``); files no longer written are
    removed. Gzip's header carries no time or name, so the same corpus gives the same bytes."""
    dest = Path(dest) if dest is not None else Path(__file__).resolve().parents[1] / SHIPPED_DIR
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_demo_corpus(Path(tmp), seed=SHIPPED_SEED)
        written = set()
        for path in sorted(p for p in corpus.root.rglob("*.jsonl")):
            target = dest / f"{path.relative_to(corpus.root).as_posix()}.gz"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
            written.add(target)
    for stale in dest.rglob("*.jsonl.gz"):
        if stale not in written:
            stale.unlink()
    return dest


if __name__ == "__main__":
    write_shipped_copy()
