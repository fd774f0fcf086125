"""The contamination check: counts per pair, the exclude / warn / error policies, and what trains."""

from __future__ import annotations

import json
import random

import pytest

from sec_cybert.core.components import Document
from sec_cybert.corpus.contamination import ContaminationPolicy, Exclusions, check_contamination
from sec_cybert.errors import DataError

VOCABULARY = ["board", "audit", "committee", "officer", "security", "program", "vendor", "incident", "response", "risk", "material", "assessment", "quarterly", "annual", "report", "threat", "monitoring", "training", "employees", "framework", "policy"]


def _paragraph(rng, n=40):
    return " ".join(rng.choice(VOCABULARY) for _ in range(n)).capitalize() + "."


@pytest.fixture
def texts():
    rng = random.Random(0)
    return {name: _paragraph(rng) for name in ("holdout1", "holdout2", "eval1", "train1", "train2", "other1", "other2")}


def _labeled(texts):
    return {
        "finetune": {
            "train": [Document("t1", texts["train1"]), Document("t2", texts["train2"])],
            "eval": [Document("e1", texts["eval1"])],
            "holdout": [Document("h1", texts["holdout1"]), Document("h2", texts["holdout2"])],
        }
    }


def _source(documents):
    return lambda report: iter(documents)


def test_filing_lines_and_paragraphs_that_copy_holdout_text_are_found_and_excluded(texts):
    near_copy = texts["holdout2"].replace(texts["holdout2"].split()[5], "changed", 1)
    filing = "\n".join(["Item 1C. Cybersecurity", texts["other1"], texts["holdout1"].upper(), texts["other2"], near_copy])
    dapt = [Document("f1", filing), Document("f2", texts["other1"])]
    tapt = [Document("p1", texts["eval1"]), Document("p2", texts["other2"]), Document("p3", texts["train1"])]
    report = check_contamination(
        {"dapt": _source(dapt), "tapt": _source(tapt)}, _labeled(texts), ContaminationPolicy()
    )
    pairs = {(o.source, o.target): o for o in report.overlaps}
    assert (pairs["dapt", "finetune.holdout"].exact, pairs["dapt", "finetune.holdout"].near) == (1, 1)
    assert pairs["dapt", "finetune.holdout"].documents == 1
    assert pairs["tapt", "finetune.eval"].exact == 1
    assert pairs["tapt", "finetune.holdout"].total == 0  # fine-tune *train* text in TAPT is allowed
    assert all(o.total == 0 for o in report.overlaps if o.source.startswith("finetune."))

    dapt_out = [report.exclusions["dapt"].apply(i, d) for i, d in enumerate(dapt)]
    assert dapt_out[0].text.split("\n") == ["Item 1C. Cybersecurity", texts["other1"], texts["other2"]]
    assert dapt_out[1] is dapt[1]
    tapt_out = [report.exclusions["tapt"].apply(i, d) for i, d in enumerate(tapt)]
    assert tapt_out[0] is None and tapt_out[1:] == tapt[1:]
    assert report.exclusions["dapt"].counts() == {"documents_removed": 0, "documents_cut": 1, "lines_removed": 2}
    report.enforce()  # exclude: nothing refused
    stage = report.for_stage("dapt")
    assert stage["excluded"]["lines_removed"] == 2 and json.dumps(stage)


def test_warn_keeps_the_text_and_error_refuses_it(texts):
    dapt = [Document("f1", texts["holdout1"])]
    warn = check_contamination({"dapt": _source(dapt)}, _labeled(texts), ContaminationPolicy(pretraining="warn"))
    assert not warn.exclusions["dapt"] and warn.exclusions["dapt"].apply(0, dapt[0]) is dapt[0]
    warn.enforce()
    error = check_contamination({"dapt": _source(dapt)}, _labeled(texts), ContaminationPolicy(pretraining="error"))
    with pytest.raises(DataError, match=r"dapt holds 1 exact and 0 near copies of finetune.holdout.*contamination.pretraining: exclude"):
        error.enforce()


def test_fine_tune_files_that_overlap_stop_the_run_by_default(texts):
    labeled = _labeled(texts)
    labeled["finetune"]["train"].append(Document("t3", texts["holdout2"] + " "))
    report = check_contamination({}, labeled, ContaminationPolicy())
    pairs = {(o.source, o.target): o.total for o in report.overlaps}
    assert pairs == {
        ("finetune.train", "finetune.eval"): 0,
        ("finetune.train", "finetune.holdout"): 1,
        ("finetune.eval", "finetune.holdout"): 0,
    }
    with pytest.raises(DataError, match=r"finetune.train holds 1 exact .*finetune.holdout.*sec-cybert split"):
        report.enforce()
    check_contamination({}, labeled, ContaminationPolicy(finetune="warn")).enforce()


def test_short_lines_are_not_compared_and_a_changed_corpus_is_an_error(texts):
    labeled = _labeled(texts)
    labeled["finetune"]["holdout"].append(Document("h3", "None."))
    report = check_contamination({"dapt": _source([Document("f", "None.\n" + texts["holdout1"])])}, labeled, ContaminationPolicy())
    assert report.exclusions["dapt"].removed == {0: ("f", (1,))}
    with pytest.raises(DataError, match="changed while the run started"):
        report.exclusions["dapt"].apply(0, Document("other-id", "text"))
    assert Exclusions("x").digest != report.exclusions["dapt"].digest


# --- through the Pipeline: checked before training, applied to what trains, recorded ---------


def _contaminated_corpus(tmp_path):
    from sec_cybert.testing import write_jsonl, write_tiny_corpus

    tiny = write_tiny_corpus(tmp_path / "corpus")
    holdout = [json.loads(line) for line in tiny.holdout.read_text().splitlines()]
    paragraphs = [json.loads(line) for line in tiny.paragraphs.read_text().splitlines()]
    # TAPT gets two holdout paragraphs verbatim; a filing gets one as a line of its own.
    write_jsonl(tiny.paragraphs, paragraphs + [{"id": "leak1", "text": holdout[0]["text"]}, {"id": "leak2", "text": holdout[1]["text"]}])
    shard = tiny.shards / "shard-00000.jsonl"
    filings = [json.loads(line) for line in shard.read_text().splitlines()]
    filings[0]["text"] += "\n" + holdout[2]["text"]
    write_jsonl(shard, filings)
    return tiny, holdout


def test_the_pipeline_removes_holdout_text_from_what_pretraining_trains_on(tmp_path, plugin_manager, monkeypatch):
    import transformers

    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import tiny_pipeline_config

    tiny, holdout = _contaminated_corpus(tmp_path)
    seen = {}
    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        seen.setdefault(self.args.output_dir.split("/")[-2], self.train_dataset)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "train", train)
    config = tiny_pipeline_config(tiny)
    for stage in config["stages"][:2]:
        stage["validation_split"] = 0.0
    result = load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path / "run")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "run" / "base")
    decoded = {
        name: tokenizer.decode([t for ids in dataset["input_ids"] for t in ids]) for name, dataset in seen.items()
    }
    for leaked in (holdout[0]["text"], holdout[1]["text"], holdout[2]["text"]):
        marker = leaked.split(" covers ")[1][:40]  # the words that make this paragraph its own
        assert marker not in decoded["dapt"] and marker not in decoded["tapt"]
    tapt_record = json.loads((tmp_path / "run" / "tapt" / "stage.json").read_text())["report"]
    tapt_pairs = {o["target"]: o for o in tapt_record["contamination"]["overlaps"]}
    assert tapt_pairs["finetune.holdout"]["exact"] == 2 and tapt_record["contamination"]["excluded"]["documents_removed"] == 2
    assert tapt_record["read"]["skipped"] == {"fine-tune evaluation text (excluded by the contamination check)": 2}
    dapt_record = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())["report"]
    assert dapt_record["contamination"]["excluded"] == {"documents_removed": 0, "documents_cut": 1, "lines_removed": 1}
    lineage = json.loads((tmp_path / "run" / "lineage.json").read_text())
    assert lineage["contamination"]["excluded"]["tapt"]["documents_removed"] == 2
    finetune_record = json.loads((tmp_path / "run" / "finetune-dapt-tapt" / "stage.json").read_text())["report"]
    assert {o["source"] for o in finetune_record["contamination"]["overlaps"]} >= {"finetune.train"}
    assert result.contamination.exclusions["tapt"]


def test_an_overlapping_fine_tune_split_stops_the_run_before_anything_trains(tmp_path, plugin_manager, capsys):
    from sec_cybert.cli import main
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.host.planner import plan_pipeline
    from sec_cybert.testing import tiny_pipeline_config, write_jsonl

    tiny, holdout = _contaminated_corpus(tmp_path)
    train = [json.loads(line) for line in tiny.train.read_text().splitlines()]
    write_jsonl(tiny.train, train + holdout[:3])
    config = tiny_pipeline_config(tiny)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    with pytest.raises(DataError, match="finetune.train holds 3 exact"):
        pipeline.run(tmp_path / "run")
    assert not (tmp_path / "run" / "dapt").exists() and not (tmp_path / "run" / "base").exists()
    plan = plan_pipeline(pipeline)
    assert "finetune.train holds 3 exact" in plan.refused
    assert any(line.startswith("tapt vs finetune.holdout: 2 exact") for line in plan.contamination)
    assert "the run would stop here" in plan.to_text()
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--out", str(tmp_path / "cli-run")]) == 2
    assert "error: finetune.train holds 3 exact and 0 near copies of finetune.holdout" in capsys.readouterr().err


# --- containment: a holdout paragraph split over lines, or embedded in a longer one ---------


def test_a_holdout_paragraph_split_over_lines_or_embedded_in_a_longer_line_is_removed():
    rng = random.Random(7)
    holdout = _paragraph(rng, 120)
    words = holdout.split()
    thirds = [" ".join(words[:40]), " ".join(words[40:80]), " ".join(words[80:])]
    unrelated = _paragraph(random.Random(99), 60)
    embedded = _paragraph(random.Random(5), 150) + " " + holdout + " " + _paragraph(random.Random(6), 150)
    filing = "\n".join(["Item 1C. Cybersecurity", *thirds, unrelated, embedded, "Item 2. Properties"])
    labeled = {"finetune": {"holdout": [Document("h1", holdout)]}}
    report = check_contamination({"dapt": _source([Document("f1", filing)])}, labeled, ContaminationPolicy())
    (overlap,) = [o for o in report.overlaps if o.source == "dapt"]
    assert (overlap.exact, overlap.near, overlap.contained) == (0, 0, 4)  # 3 pieces + 1 host line
    assert overlap.documents == 1 and overlap.total == 4
    kept = report.exclusions["dapt"].apply(0, Document("f1", filing)).text.split("\n")
    assert kept == ["Item 1C. Cybersecurity", unrelated, "Item 2. Properties"]
    assert report.exclusions["dapt"].counts() == {"documents_removed": 0, "documents_cut": 1, "lines_removed": 4}
    assert any("4 contained" in line for line in report.summary_lines())


def test_a_short_sentence_of_a_holdout_paragraph_in_a_line_of_its_own_is_removed():
    """A line most of whose shingles are inside a holdout paragraph is holdout text."""
    holdout = _paragraph(random.Random(3), 120)
    quoted = " ".join(holdout.split()[30:45])
    unrelated = _paragraph(random.Random(11), 15)
    filing = "\n".join([quoted, unrelated])
    labeled = {"finetune": {"holdout": [Document("h1", holdout)]}}
    report = check_contamination({"tapt": _source([Document("p1", filing)])}, labeled, ContaminationPolicy())
    assert report.exclusions["tapt"].removed == {0: ("p1", (0,))}


def test_containment_needs_min_words_and_a_distinctive_share():
    """A short holdout text inside a long line, and a line sharing a few phrases, are kept."""
    rng = random.Random(4)
    holdout = _paragraph(rng, 80)
    long_line = _paragraph(random.Random(8), 60) + " " + " ".join(holdout.split()[:10])
    labeled = {"finetune": {"holdout": [Document("h1", holdout), Document("h2", "None reported.")]}}
    report = check_contamination(
        {"dapt": _source([Document("f1", long_line + "\nNone reported. " + _paragraph(rng, 30))])},
        labeled,
        ContaminationPolicy(),
    )
    assert not report.exclusions["dapt"]


def test_the_pieces_of_a_split_paragraph_go_together_even_short_or_glued_to_other_text():
    holdout = _paragraph(random.Random(12), 120)
    words = holdout.split()
    preamble = _paragraph(random.Random(13), 50)
    pieces = [preamble + " " + " ".join(words[:40]), " ".join(words[40:44]), " ".join(words[44:])]
    after = _paragraph(random.Random(14), 40)
    filing = "\n".join([*pieces, after])
    labeled = {"finetune": {"holdout": [Document("h1", holdout)]}}
    report = check_contamination({"dapt": _source([Document("f1", filing)])}, labeled, ContaminationPolicy())
    assert report.exclusions["dapt"].removed == {0: ("f1", (0, 1, 2))}
    # Nor is a line that only shares some phrases with a paragraph pulled in next to a removed one.
    (overlap,) = [o for o in report.overlaps if o.source == "dapt"]
    assert overlap.contained == 3
