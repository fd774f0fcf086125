"""`sec-cybert split`: by company or filing, copies kept together, stratified as far as groups allow."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from sec_cybert.cli import main
from sec_cybert.core.taxonomy import CATEGORIES
from sec_cybert.corpus.dedup import duplicate_clusters
from sec_cybert.corpus.split import parse_fractions, split_labeled
from sec_cybert.errors import ConfigError, DataError
from sec_cybert.testing import write_jsonl

VOCABULARY = ["board", "audit", "committee", "officer", "security", "program", "vendor", "incident", "response", "risk", "material", "threat"]


def _company_filings(companies=30, years=3, per_filing=5, seed=0):
    """Each company files every year and copies most paragraphs from the year before, with a
    changed word here and there: the structure real Item 1C data has."""
    rng = random.Random(seed)
    records = []
    for c in range(companies):
        base = [
            (rng.choice(CATEGORIES), " ".join(rng.choice(VOCABULARY) for _ in range(40)) + f" company{c} p{p}")
            for p in range(per_filing)
        ]
        for year in range(years):
            for p, (category, text) in enumerate(base):
                words = text.split()
                if year and rng.random() < 0.5:
                    words[rng.randrange(35)] = f"year{year}"
                records.append(
                    {
                        "id": f"c{c}-y{year}-p{p}",
                        "text": " ".join(words),
                        "category": category,
                        "cik": str(1000 + c),
                        "accession": f"000{c}-2{year}-000001",
                    }
                )
    rng.shuffle(records)
    return records


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_split_by_company_keeps_companies_and_copies_whole(tmp_path):
    records = _company_filings()
    source = write_jsonl(tmp_path / "labeled.jsonl", records)
    report = split_labeled(source, tmp_path / "out", by="company", seed=1)
    splits = {name: _read(tmp_path / "out" / f"{name}.jsonl") for name in ("train", "eval", "holdout")}
    # Every record is written exactly once, with its fields.
    written = [r for rows in splits.values() for r in rows]
    assert sorted(r["id"] for r in written) == sorted(r["id"] for r in records)
    assert {r["id"]: r for r in written}["c0-y0-p0"]["cik"] == "1000"
    # No company, and no near-duplicate cluster, spans two splits.
    side = {r["id"]: name for name, rows in splits.items() for r in rows}
    for key in ("cik",):
        owners = {}
        for r in written:
            owners.setdefault(r[key], set()).add(side[r["id"]])
        assert all(len(s) == 1 for s in owners.values())
    clusters = duplicate_clusters((r["text"] for r in written), "near", threshold=0.8)
    by_cluster = {}
    for r, cluster in zip(written, clusters.ids, strict=True):
        by_cluster.setdefault(cluster, set()).add(side[r["id"]])
    assert all(len(s) == 1 for s in by_cluster.values())
    # Sizes follow the fractions within a company's worth; labels are spread over the splits.
    sizes = {name: len(rows) for name, rows in splits.items()}
    assert abs(sizes["train"] - 0.8 * len(records)) <= 15 and sizes["eval"] and sizes["holdout"]
    assert report.splits["holdout"]["records"] == sizes["holdout"]
    assert sum(report.splits["train"]["labels"].values()) == sizes["train"]
    saved = json.loads((tmp_path / "out" / "split-report.json").read_text())
    assert saved["groups"] == 30 and saved["records"] == len(records)


def test_stratification_beats_a_plain_group_split():
    from sec_cybert.corpus.split import assign_units

    records = _company_filings(companies=60, years=1, per_filing=4, seed=3)
    units, labels = [int(r["cik"]) for r in records], [r["category"] for r in records]
    fractions = {"train": 0.8, "eval": 0.1, "holdout": 0.1}
    overall = Counter(labels)

    def worst_gap(assignment):
        """The largest difference, over categories and splits, between a split's share and the whole's."""
        gaps = []
        for split in fractions:
            counts = Counter(label for unit, label in zip(units, labels, strict=True) if assignment[unit] == split)
            n = sum(counts.values())
            gaps += [abs(counts[c] / n - k / len(labels)) for c, k in overall.items()]
        return max(gaps)

    ours, plain = [], []
    for seed in range(5):
        ours.append(worst_gap(assign_units(units, labels, fractions, seed)))
        shuffled = sorted(set(units))
        random.Random(seed).shuffle(shuffled)
        plain.append(worst_gap({u: "train" if i < 48 else "eval" if i < 54 else "holdout" for i, u in enumerate(shuffled)}))
    assert sum(ours) < 0.75 * sum(plain), (ours, plain)


def test_split_by_filing_uses_accessions(tmp_path):
    records = _company_filings(companies=6, years=3, per_filing=4)
    rng = random.Random(9)
    for r in records:  # every paragraph rewritten, so no copies tie the years together
        r["text"] = " ".join(rng.choice(VOCABULARY) for _ in range(40))
    source = write_jsonl(tmp_path / "labeled.jsonl", records)
    report = split_labeled(source, tmp_path / "out", by="filing")
    assert report.groups == 18 and report.group_field == "accession or source_file"


def test_bad_inputs_are_one_clear_line(tmp_path, capsys):
    source = write_jsonl(tmp_path / "labeled.jsonl", [{"text": "a paragraph of text", "category": "None/Other"}])
    with pytest.raises(DataError, match=r"1 of 1 records have no 'cik'.*--by FIELD"):
        split_labeled(source, tmp_path / "out")
    with pytest.raises(ConfigError, match="sum to 1"):
        parse_fractions("0.8,0.3,0.1")
    records = _company_filings(companies=2, years=1)
    assert main(["split", str(write_jsonl(tmp_path / "two.jsonl", records)), "--out", str(tmp_path / "o")]) == 2
    assert "too few for 3 splits" in capsys.readouterr().err
    assert main(["split", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 2


def test_cli_writes_the_files_and_prints_the_table(tmp_path, capsys):
    source = write_jsonl(tmp_path / "labeled.jsonl", _company_filings())
    assert main(["split", str(source), "--out", str(tmp_path / "out"), "--fractions", "0.7,0.15,0.15", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "holdout" in printed and "30 groups" in printed
    assert main(["split", str(source), "--out", str(tmp_path / "out")]) == 2  # no --overwrite
    assert main(["split", str(source), "--out", str(tmp_path / "out"), "--overwrite"]) == 0
