"""Duplicates, split leakage and the contamination check, measured on real filings and Item 1C texts.

    python benchmarks/corpus/duplicates_and_contamination.py [--shared /work/shared/data] [--scale 200]

Reads the developer copies of real 10-K Item 1C texts (``item1c/*.txt``) and real 10-K filings
(``filings/*.htm``; they need the ``corpus`` extra), and prints, with the library's own functions:

* how many Item 1C paragraphs are exact or near copies of a paragraph of *another filing*;
* how often a random 5 % validation split of those paragraphs holds a copy of a training
  paragraph (the reference's TAPT split), against ``validation_mask`` (never, by construction);
* ``sec-cybert split``'s by-company split, and the contamination check of the filings (DAPT)
  and the paragraphs (TAPT) against its eval/holdout texts, and against every paragraph;
* the time the clustering and the check take, and the clustering on ``--scale`` x the
  paragraphs (copies with one word changed each), to show how it grows.

Nothing from ../shared is copied into the project: the figures go to docs/corpus.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

from sec_cybert.core.components import Document
from sec_cybert.corpus.contamination import ContaminationPolicy, check_contamination
from sec_cybert.corpus.dedup import duplicate_clusters
from sec_cybert.corpus.select import validation_mask
from sec_cybert.corpus.split import split_labeled

_NAME = re.compile(r"^(?P<ticker>[A-Z]+)-10-K-FY(?P<year>\d{4})-item1c\.txt$")


def item1c_paragraphs(directory: Path, min_words: int = 8) -> list[Document]:
    """One Document per prose line (>= ``min_words`` words) of each Item 1C text."""
    documents = []
    for path in sorted(directory.glob("*-item1c.txt")):
        match = _NAME.match(path.name)
        if not match:
            continue
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        for index, line in enumerate(line for line in lines if len(line.split()) >= min_words):
            documents.append(
                Document(
                    id=f"{path.stem}-{index:03d}",
                    text=line,
                    metadata={"cik": match["ticker"], "accession": path.stem, "category": "unlabeled"},
                )
            )
    return documents


def filings(directory: Path) -> list[Document]:
    from sec_cybert.corpus.html_clean import clean_html

    return [Document(p.stem, clean_html(p.read_bytes()).text) for p in sorted(directory.glob("*.htm"))]


def copies_in_other_filings(documents: list[Document], mode: str) -> tuple[int, dict[str, int], float]:
    start = time.perf_counter()
    clusters = duplicate_clusters((d.text for d in documents), mode)
    seconds = time.perf_counter() - start
    filings_of: dict[int, set[str]] = {}
    for document, cluster in zip(documents, clusters.ids, strict=True):
        filings_of.setdefault(cluster, set()).add(document.metadata["accession"])
    shared = sum(
        1
        for document, cluster in zip(documents, clusters.ids, strict=True)
        if filings_of[cluster] - {document.metadata["accession"]}
    )
    return shared, clusters.as_dict(), seconds


def random_split_leaks(documents: list[Document], trials: int = 1000) -> tuple[float, float]:
    """Share of random 5 % splits whose validation holds a copy of a training paragraph, and the
    mean share of validation paragraphs that do."""
    clusters = duplicate_clusters((d.text for d in documents), "near").ids
    rng = random.Random(0)
    leaky = 0
    share = 0.0
    n = len(documents)
    for _ in range(trials):
        held = set(rng.sample(range(n), max(1, round(0.05 * n))))
        train_clusters = {clusters[i] for i in range(n) if i not in held}
        copies = sum(1 for i in held if clusters[i] in train_clusters)
        leaky += copies > 0
        share += copies / len(held)
    return leaky / trials, share / trials


def our_split_leaks(documents: list[Document], trials: int = 200) -> int:
    clusters = list(duplicate_clusters((d.text for d in documents), "near").ids)
    bad = 0
    for seed in range(trials):
        held = validation_mask(clusters, [""] * len(clusters), 0.05, seed)
        train = {c for c, h in zip(clusters, held, strict=True) if not h}
        bad += any(c in train for c, h in zip(clusters, held, strict=True) if h)
    return bad


def scaled(documents: list[Document], scale: int) -> list[str]:
    rng = random.Random(1)
    texts = []
    for copy in range(scale):
        for document in documents:
            words = document.text.split()
            words[rng.randrange(len(words))] = f"w{copy}"
            texts.append(" ".join(words))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--scale", type=int, default=200)
    args = parser.parse_args()
    paragraphs = item1c_paragraphs(args.shared / "item1c")
    companies = len({d.metadata["cik"] for d in paragraphs})
    sections = len({d.metadata["accession"] for d in paragraphs})
    print(f"Item 1C paragraphs: {len(paragraphs)} from {sections} filings of {companies} companies")
    for mode in ("exact", "near"):
        shared, counts, seconds = copies_in_other_filings(paragraphs, mode)
        print(
            f"  {mode:5}: {shared} ({shared / len(paragraphs):.1%}) have a copy in another filing; "
            f"clusters {counts}; {seconds * 1000:.0f} ms"
        )
    leaky, share = random_split_leaks(paragraphs)
    print(
        f"random 5% validation split: {leaky:.1%} of splits hold a copy of a training paragraph "
        f"({share:.1%} of validation paragraphs on average); validation_mask: {our_split_leaks(paragraphs)} of 200"
    )
    texts = scaled(paragraphs, args.scale)
    start = time.perf_counter()
    big = duplicate_clusters(texts, "near")
    print(f"near clustering of {len(texts):,} paragraphs: {time.perf_counter() - start:.1f} s ({big.count:,} clusters)")

    dapt = filings(args.shared / "filings")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "labeled.jsonl"
        source.write_text(
            "".join(json.dumps({"id": d.id, "text": d.text, **d.metadata}) + "\n" for d in paragraphs)
        )
        report = split_labeled(source, Path(tmp) / "split", by="company", seed=0)
        print(report.to_text())
        split = {
            name: [Document(r["id"], r["text"]) for r in map(json.loads, Path(s["file"]).read_text().splitlines())]
            for name, s in report.splits.items()
        }
    pretraining = {"dapt": lambda _report: iter(dapt), "tapt": lambda _report: iter(paragraphs)}
    for label, finetune in (
        ("by-company split", split),
        ("every paragraph as holdout", {"holdout": paragraphs}),
    ):
        start = time.perf_counter()
        checked = check_contamination(pretraining, {"finetune": finetune}, ContaminationPolicy())
        seconds = time.perf_counter() - start
        print(f"contamination check against the {label} ({seconds:.2f} s):")
        for overlap in checked.overlaps:
            print(
                f"  {overlap.source:>16} vs {overlap.target:<17} exact {overlap.exact:>4}  near {overlap.near:>4}  "
                f"contained {overlap.contained:>3}  documents {overlap.documents:>4}  chars {overlap.chars:>7,}"
            )
        for name, exclusions in checked.exclusions.items():
            print(f"  excluded from {name}: {exclusions.counts()}")
    lines = sum(len(d.text.split("\n")) for d in dapt)
    print(f"(DAPT: {len(dapt)} filings, {lines:,} lines)")


if __name__ == "__main__":
    main()
