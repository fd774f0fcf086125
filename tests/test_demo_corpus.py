"""The embedded demo corpus: deterministic, complete, well-formed and free of cross-split copies."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from random import Random

import attrs
import pytest

from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS
from sec_cybert.testing import demo_corpus as dc
from sec_cybert.testing import demo_text
from sec_cybert.testing.demo_corpus import PARAGRAPH_WORDS, DemoCorpus, DemoSize, write_demo_corpus
from sec_cybert.testing.demo_filings import make_filings

CELLS = {(c, s) for c in CATEGORIES for s in SPECIFICITY_LEVELS}
METADATA_FIELDS = {"cik", "company", "form", "fiscal_year", "filing_date", "accession"}
SMALL = DemoSize(
    dapt_documents=4,
    documents_per_shard=3,
    tapt_paragraphs=3,
    train_per_cell=2,
    eval_per_cell=1,
    holdout_per_cell=1,
)


def read_jsonl(path: Path) -> list[dict]:
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    lines = raw.split("\n")[:-1]
    assert all(line.strip() for line in lines), f"blank line in {path}"
    return [json.loads(line) for line in lines]


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> DemoCorpus:
    return write_demo_corpus(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def documents(corpus: DemoCorpus) -> list[dict]:
    return [doc for shard in corpus.dapt_shards for doc in read_jsonl(shard)]


@pytest.fixture(scope="module")
def labeled(corpus: DemoCorpus) -> dict[str, list[dict]]:
    return {split: read_jsonl(path) for split, path in corpus.labeled_files.items()}


@pytest.fixture(scope="module")
def paragraphs(corpus: DemoCorpus) -> list[dict]:
    return read_jsonl(corpus.paragraphs_file)


# -- determinism ------------------------------------------------------------------------------


def test_two_writes_give_identical_bytes(tmp_path: Path, corpus: DemoCorpus) -> None:
    again = write_demo_corpus(tmp_path / "again")
    assert file_bytes(again.root) == file_bytes(corpus.root)


def test_rewriting_the_same_directory_is_idempotent_and_drops_stale_shards(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    write_demo_corpus(out, size=attrs.evolve(SMALL, documents_per_shard=1))
    assert len(list((out / "dapt").glob("shard-*.jsonl"))) == 4
    write_demo_corpus(out, size=SMALL)
    first = file_bytes(out)
    write_demo_corpus(out, size=SMALL)
    assert file_bytes(out) == first
    assert file_bytes(out) == file_bytes(write_demo_corpus(tmp_path / "fresh", size=SMALL).root)


def test_seed_changes_the_corpus(tmp_path: Path) -> None:
    a = write_demo_corpus(tmp_path / "a", seed=0, size=SMALL)
    b = write_demo_corpus(tmp_path / "b", seed=1, size=SMALL)
    assert a.train_file.read_bytes() != b.train_file.read_bytes()
    assert file_bytes(a.dapt_dir) != file_bytes(b.dapt_dir)


# -- the shipped copy --------------------------------------------------------------------------


def test_the_shipped_corpus_is_what_the_generator_writes(corpus: DemoCorpus) -> None:
    from sec_cybert.testing.demo_data import shipped_files

    assert shipped_files() == file_bytes(corpus.root), (
        "src/sec_cybert/data/demo/corpus differs from what the generator writes: "
        "run `python -m sec_cybert.testing.demo_corpus` and commit both"
    )


def test_unpacking_gives_the_generated_corpus_and_drops_stale_shards(tmp_path: Path, corpus: DemoCorpus) -> None:
    from sec_cybert.testing.demo_data import unpack_demo_corpus

    out = tmp_path / "data"
    (out / "dapt").mkdir(parents=True)
    (out / "dapt" / "shard-00009.jsonl").write_text("{}\n")  # left by an older, larger corpus
    unpacked = unpack_demo_corpus(out)
    assert file_bytes(out) == file_bytes(corpus.root)
    paths = {"root", "dapt_dir", "paragraphs_file", "train_file", "eval_file", "holdout_file"}
    assert {k: v for k, v in unpacked.as_dict().items() if k not in paths} == {
        k: v for k, v in corpus.as_dict().items() if k not in paths
    }
    assert unpacked.dapt_shards == [out / "dapt" / f"shard-0000{i}.jsonl" for i in range(3)]


def test_writing_the_shipped_copy_is_deterministic(tmp_path: Path, corpus: DemoCorpus) -> None:
    import gzip

    first = file_bytes(dc.write_shipped_copy(tmp_path / "a"))
    assert first == file_bytes(dc.write_shipped_copy(tmp_path / "b"))
    assert {name.removesuffix(".gz"): gzip.decompress(data) for name, data in first.items()} == file_bytes(
        corpus.root
    )


def test_the_demo_unpacks_the_shipped_corpus_instead_of_generating_it(tmp_path: Path, monkeypatch) -> None:
    import yaml

    from sec_cybert.app.demo import write_demo_config

    def refuse(*args, **kwargs):
        raise AssertionError("sec-cybert demo ran the generator")

    monkeypatch.setattr(dc, "write_demo_corpus", refuse)
    config = yaml.safe_load(write_demo_config(tmp_path / "out").read_text())
    labeled = tmp_path.resolve() / "out" / "data" / "labeled"
    assert (labeled / "train.jsonl").read_bytes().count(b"\n") == 560
    assert str(labeled / "holdout.jsonl") in yaml.safe_dump(config)


def test_the_old_module_name_still_imports_with_a_deprecation_warning(monkeypatch) -> None:
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "sec_cybert.demo_corpus", raising=False)
    with pytest.warns(DeprecationWarning, match="sec_cybert.testing.demo_corpus"):
        old = importlib.import_module("sec_cybert.demo_corpus")
    assert old.write_demo_corpus is write_demo_corpus and old.DemoSize is DemoSize


# -- sizes and layout -------------------------------------------------------------------------


def test_default_sizes(corpus: DemoCorpus, documents: list[dict], paragraphs: list[dict]) -> None:
    assert (corpus.n_documents, len(documents)) == (60, 60)
    assert [p.name for p in corpus.dapt_shards] == [
        "shard-00000.jsonl",
        "shard-00001.jsonl",
        "shard-00002.jsonl",
    ]
    assert (corpus.n_paragraphs, len(paragraphs)) == (600, 600)
    assert (corpus.n_train, corpus.n_eval, corpus.n_holdout) == (560, 140, 140)


def test_dapt_documents_are_within_the_word_range(documents: list[dict]) -> None:
    size = DemoSize()
    lengths = [words(doc["text"]) for doc in documents]
    assert all(size.dapt_min_words <= n <= size.dapt_max_words for n in lengths), (min(lengths), max(lengths))
    assert max(lengths) - min(lengths) > 1000  # a spread, not one fixed length


def test_dapt_documents_look_like_filings_and_contain_their_item1c(
    documents: list[dict], paragraphs: list[dict]
) -> None:
    by_doc: dict[str, list[str]] = {}
    for paragraph in paragraphs:
        by_doc.setdefault(paragraph["id"].rsplit("-p", 1)[0], []).append(paragraph["text"])
    for doc in documents:
        text = doc["text"]
        for heading in (
            "FORM 10-K",
            "Item 1. Business",
            "Item 1A. Risk Factors",
            "Item 1C. Cybersecurity",
            "Item 7.",
        ):
            assert heading in text, (doc["id"], heading)
        assert by_doc[doc["id"]], doc["id"]
        assert all(p in text for p in by_doc[doc["id"]])


def test_metadata_fields_and_dates(documents: list[dict], paragraphs: list[dict]) -> None:
    low, high = dt.date(2023, 1, 1), dt.date(2025, 12, 31)
    years = Counter()
    for record in [*documents, *paragraphs]:
        meta = record["metadata"]
        assert set(meta) >= METADATA_FIELDS
        assert meta["form"] == "10-K"
        assert re.fullmatch(r"\d{10}", meta["cik"])
        assert re.fullmatch(r"\d{10}-\d{2}-\d{6}", meta["accession"])
        assert isinstance(meta["fiscal_year"], int)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["filing_date"])
        filed = dt.date.fromisoformat(meta["filing_date"])
        assert low <= filed <= high
        assert meta["fiscal_year"] <= filed.year
        years[filed.year] += 1
    assert set(years) == {2023, 2024, 2025}
    assert len({d["metadata"]["accession"] for d in documents}) == len(documents)


def test_tapt_paragraphs_carry_no_labels(paragraphs: list[dict]) -> None:
    for paragraph in paragraphs:
        assert set(paragraph) == {"id", "text", "metadata"}
        assert paragraph["metadata"]["section"] == "Item 1C"


# -- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "per_cell"), [("train", 20), ("eval", 5), ("holdout", 5)])
def test_every_cell_is_covered_in_every_split(
    labeled: dict[str, list[dict]], split: str, per_cell: int
) -> None:
    counts = Counter((row["category"], row["specificity"]) for row in labeled[split])
    assert set(counts) == CELLS
    assert set(counts.values()) == {per_cell}


def test_labeled_rows_use_the_label_sets(labeled: dict[str, list[dict]]) -> None:
    for rows in labeled.values():
        for row in rows:
            assert set(row) == {"id", "text", "category", "specificity", "cik", "company", "accession", "fiscal_year"}
            assert row["category"] in CATEGORIES
            assert row["specificity"] in SPECIFICITY_LEVELS


def test_labeled_splits_are_split_by_company(labeled: dict[str, list[dict]]) -> None:
    companies = {split: {row["cik"] for row in rows} for split, rows in labeled.items()}
    assert not companies["train"] & companies["eval"] and not companies["train"] & companies["holdout"]
    assert not companies["eval"] & companies["holdout"]


def test_no_text_repeats_within_or_across_splits(
    labeled: dict[str, list[dict]], paragraphs: list[dict]
) -> None:
    from sec_cybert.corpus.dedup import duplicate_clusters

    texts = [row["text"] for rows in labeled.values() for row in rows] + [p["text"] for p in paragraphs]
    assert len(texts) == len(set(texts))
    assert duplicate_clusters(texts, "near").count == len(texts)  # not even a near copy
    ids = [row["id"] for rows in labeled.values() for row in rows] + [p["id"] for p in paragraphs]
    assert len(ids) == len(set(ids))


def test_paragraph_lengths(labeled: dict[str, list[dict]], paragraphs: list[dict]) -> None:
    low, high = PARAGRAPH_WORDS
    for text in [row["text"] for rows in labeled.values() for row in rows] + [p["text"] for p in paragraphs]:
        assert low <= words(text) <= high, text
        assert "{" not in text and "[" not in text and "  " not in text


def test_specificity_signal_is_present(labeled: dict[str, list[dict]]) -> None:
    """Quantified paragraphs carry digits; generic ones never do."""
    for row in labeled["train"]:
        has_digit = bool(re.search(r"\d", row["text"].replace("Item 1A", "").replace("Item 1", "")))
        if row["specificity"] == "Generic Boilerplate":
            assert not has_digit, row["text"]
        if row["specificity"] == "Quantified-Verifiable" and row["category"] != "Board Governance":
            assert has_digit, row["text"]


def test_small_sizes_work_even_with_fewer_paragraphs_than_filings(tmp_path: Path) -> None:
    small = write_demo_corpus(tmp_path, size=SMALL)
    assert (small.n_documents, small.n_paragraphs, small.n_train, small.n_eval) == (4, 3, 56, 28)
    assert len(small.dapt_shards) == 2


# -- templates --------------------------------------------------------------------------------

SECTOR_SLOTS = {
    "a_sector_noun",
    "sector_noun",
    "sector_data",
    "sector_systems",
    "sector_threat",
    "sector_regulation",
    "sector_partners",
    "sector_customers",
}
FIRM_SLOTS = SECTOR_SLOTS | {
    "ciso_title",
    "cio_title",
    "exec_title",
    "board_committee",
    "mgmt_committee",
    "security_team",
    "program_name",
    "vendor_program",
    "framework",
    "prior_role",
    "risk_caption",
}


def slots_of(template: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", template))


def test_each_level_uses_only_the_slots_its_definition_allows() -> None:
    item1c = demo_text.templates().item1c
    for category in CATEGORIES:
        generic, sector, firm, quantified = (item1c[category][level] for level in SPECIFICITY_LEVELS)
        for template in generic:
            assert not slots_of(template), template
        for template in sector:
            assert slots_of(template) and slots_of(template) <= SECTOR_SLOTS, template
        for template in firm:
            assert slots_of(template) <= FIRM_SLOTS and slots_of(template) - SECTOR_SLOTS, template
        for template in quantified:
            assert slots_of(template) - FIRM_SLOTS, template
        for template in [*generic, *sector, *firm]:
            assert not re.search(r"\d", re.sub(r"Item \d+[A-C]?", "", template)), template


def test_every_template_renders() -> None:
    rng = Random(0)
    filing = make_filings(rng, 1)[0]
    spec = demo_text.templates().filing
    templates = [t for cells in demo_text.templates().item1c.values() for cell in cells.values() for t in cell]
    templates += [*spec["cover"], spec["item1a"]["intro"], *spec["item7"]["extra"]]
    templates += [part for rf in spec["item1a"]["risk_factors"] for part in (rf["heading"], rf["body"])]
    for key in ("item1", "item2", "item3", "item5", "item7", "item7a"):
        templates += spec[key]["paragraphs"]
    for template in templates:
        text = demo_text.render(template, rng, demo_text.Slots(rng, filing.context))
        assert not re.search(r"[\[\]{}]", text), text


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [f.name for f in attrs.fields(DemoSize)])
def test_demo_size_rejects_non_positive_counts(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DemoSize(**{field: 0})


def test_demo_size_needs_room_between_min_and_max_words() -> None:
    with pytest.raises(ValueError, match="dapt_max_words"):
        DemoSize(dapt_min_words=2000, dapt_max_words=2100)


def test_demo_corpus_is_frozen(corpus: DemoCorpus) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        corpus.n_train = 1  # type: ignore[misc]
    assert corpus.as_dict()["n_train"] == 560
