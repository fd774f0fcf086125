"""Exact and near duplicates, and validation splits that never separate a copy from its original."""

from __future__ import annotations

import random

import datasets
import pytest

from sec_cybert.corpus.dedup import (
    NearDuplicateIndex,
    duplicate_clusters,
    exact_key,
    jaccard,
    normalize_for_matching,
    shingles,
)
from sec_cybert.corpus.select import drop_exact_duplicates, validation_mask

BASE = (
    "The audit committee of our board of directors oversees our cybersecurity risk management "
    "program and receives quarterly reports from our chief information security officer on "
    "threats, incidents and the results of our annual tabletop exercises"
)


def _words(rng, n):
    vocabulary = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma"]
    return " ".join(rng.choice(vocabulary) for _ in range(n))


def test_exact_copies_ignore_case_punctuation_quotes_and_layout():
    assert normalize_for_matching("The “CISO”,  reports\nquarterly.") == "the ciso reports quarterly"
    assert exact_key("The CISO reports.") == exact_key("the  ciso — reports")
    assert exact_key("The CISO reports in 2024.") != exact_key("The CISO reports in 2023.")


def test_jaccard_on_word_shingles_is_exact():
    a, b = shingles("a b c d e", 3), shingles("a b c d f", 3)
    # {abc, bcd, cde} vs {abc, bcd, cdf}: 2 shared of 4.
    assert jaccard(a, b) == pytest.approx(2 / 4)
    assert jaccard(a, a) == 1.0 and len(shingles("two words", 3)) == 1


def test_clusters_join_exact_and_near_copies_and_nothing_else():
    rng = random.Random(0)
    year_over_year = BASE.replace("quarterly", "monthly")  # one word changed in 40
    distinct = [_words(rng, 40) for _ in range(30)]
    texts = [BASE, distinct[0], BASE.upper() + "!", year_over_year, *distinct[1:]]
    clusters = duplicate_clusters(texts, "near", threshold=0.8)
    assert clusters.ids[2] == 0 and clusters.ids[3] == 0  # the exact and the near copy join the first
    assert len(set(clusters.ids[4:]) | {clusters.ids[1]}) == 30  # random texts stay apart
    assert (clusters.exact_copies, clusters.near_copies, clusters.count) == (1, 1, 31)
    exact_only = duplicate_clusters(texts, "exact")
    assert exact_only.ids[3] == 3 and exact_only.exact_copies == 1
    assert duplicate_clusters(texts, "none").count == len(texts)


def test_near_threshold_is_respected_on_both_sides():
    rng = random.Random(1)
    original = _words(rng, 60).split()
    for changed in (1, 4, 8, 15):
        copy = list(original)
        for position in rng.sample(range(60), changed):
            copy[position] = "zzz"
        true = jaccard(shingles(" ".join(original), 3), shingles(" ".join(copy), 3))
        clusters = duplicate_clusters([" ".join(original), " ".join(copy)], "near", threshold=0.7)
        # Verified on the exact shingle sets: joined iff the true Jaccard reaches the threshold.
        assert (clusters.count == 1) == (true >= 0.7), (changed, true)


def test_the_index_prefilter_never_changes_the_answer():
    rng = random.Random(2)
    protected = [_words(rng, 50) for _ in range(20)]
    queries = [*protected[:5], protected[5].replace(protected[5].split()[3], "zzz", 1), *(_words(rng, 50) for _ in range(50))]
    plain, filtered = NearDuplicateIndex(threshold=0.8), NearDuplicateIndex(threshold=0.8, prefilter=True)
    for i, text in enumerate(protected):
        plain.add(i, text)
        filtered.add(i, text)
    for query in queries:
        assert [m.payload for m in plain.find(query)] == [m.payload for m in filtered.find(query)]
    assert filtered.find(protected[5].replace(protected[5].split()[3], "zzz", 1))[0].kind == "near"


def test_drop_exact_duplicates_keeps_the_first_copy():
    dataset = datasets.Dataset.from_dict({"text": ["a  b\nc", "A b, c.", "other"]})
    kept, removed = drop_exact_duplicates(dataset)
    assert removed == 1 and kept["text"] == ["a  b\nc", "other"]


def test_validation_never_holds_a_copy_of_a_training_document():
    rng = random.Random(3)
    clusters = [rng.randrange(40) for _ in range(200)]  # 200 documents, many copies of each other
    for seed in range(20):
        held = validation_mask(clusters, [""] * 200, 0.1, seed)
        train_clusters = {c for c, h in zip(clusters, held, strict=True) if not h}
        validation_clusters = {c for c, h in zip(clusters, held, strict=True) if h}
        assert validation_clusters and not train_clusters & validation_clusters
        assert 0 < sum(held) <= 20  # ceil(0.1 * 200), never overshot


def test_validation_holds_out_whole_groups_and_never_everything():
    groups = [f"cik{i // 3}" for i in range(12)]
    held = validation_mask(list(range(12)), groups, 0.25, 0)
    assert sum(held) == 3 and len({g for g, h in zip(groups, held, strict=True) if h}) == 1
    assert validation_mask([0, 0, 0], ["", "", ""], 0.5, 0) == [False] * 3  # one unit: nothing to hold out
    assert sum(validation_mask([0, 1], ["", ""], 0.9, 0)) == 1  # training keeps at least one unit
