"""The pipeline end to end on a tiny corpus: outputs, lineage, ablation, resume, bad labels."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from structlog.testing import capture_logs
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from sec_cybert import Pipeline, corpus, stages
from sec_cybert.errors import ConfigError, DataError
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.stages.classifier import MultiHeadClassifier
from sec_cybert.testing import TINY_ENCODER_OPTIONS, tiny_pipeline_config, write_jsonl

# finished_run (tests/conftest.py): one tiny DAPT -> TAPT -> fine-tune run with its ablation,
# trained once per session and shared with the model-card and report tests.


def test_every_stage_writes_a_loadable_checkpoint_with_its_tokenizer(finished_run):
    run_dir, result, *_ = finished_run
    for name in ("base", "dapt", "tapt"):
        AutoModelForMaskedLM.from_pretrained(run_dir / name)
        AutoTokenizer.from_pretrained(run_dir / name)
    for name in ("finetune-base", "finetune-dapt", "finetune-dapt-tapt"):
        AutoModel.from_pretrained(run_dir / name)
        AutoTokenizer.from_pretrained(run_dir / name)
        assert MultiHeadClassifier.load(run_dir / name).head_specs[1].kind == "coral"
    assert [v.name for v in result.variants] == ["base", "+DAPT", "+DAPT+TAPT"]
    # Every saved directory carries its model card, written by the host after the stage.
    import yaml

    for name in ("dapt", "tapt", "finetune-base", "finetune-dapt", "finetune-dapt-tapt"):
        card = (run_dir / name / "README.md").read_text()
        front = yaml.safe_load(card.split("---")[1])
        assert front["library_name"] == "transformers" and front["model-index"]


def test_lineage_records_which_checkpoint_fed_which_stage(finished_run):
    run_dir, *_ = finished_run
    lineage = json.loads((run_dir / "lineage.json").read_text())
    by_output = {entry["output"].rsplit("/", 1)[-1]: entry for entry in lineage["stages"]}
    # Relative to the run directory: a moved or shared run directory still names its parts.
    assert by_output["dapt"]["input"] == "base"
    assert by_output["tapt"]["input"] == "dapt"
    assert by_output["finetune-dapt-tapt"]["input"] == "tapt"
    assert lineage["base_checkpoint"] == "base" and str(run_dir) not in json.dumps(lineage["stages"][0]["output"])
    assert by_output["finetune-base"]["variant"] == "base"
    assert by_output["tapt"]["config"]["masker"]["kind"] == "whole-word"
    assert by_output["dapt"]["config"]["training"]["learning_rate"] == 1e-3
    assert lineage["hardware"] == "cpu" and lineage["encoder"] == "tiny-modernbert"
    # Every plugin that provided a component of the run, with its package and version.
    from importlib.metadata import version

    plugins = lineage["plugins"]
    assert plugins["builtin-stages"] == {"distribution": "sec-cybert", "version": version("sec-cybert"), "components": ["stage:mlm", "stage:finetune"]}
    assert set(plugins["builtin-maskers"]["components"]) == {"masker:token", "masker:whole-word"}
    assert "encoder:tiny-modernbert" in plugins["builtin-encoders"]["components"]
    assert "hardware:cpu" in plugins["builtin-hardware"]["components"]


def test_ablation_rows_and_perplexity_is_e_to_the_loss(finished_run):
    run_dir, _, table, *_ = finished_run
    data = json.loads((run_dir / "ablation.json").read_text())
    assert [row["variant"] for row in data["rows"]] == ["base", "+DAPT", "+DAPT+TAPT"]
    for row in data["rows"]:
        for column in ("category_macro_f1", "specificity_macro_f1", "specificity_qwk"):
            assert 0.0 <= row["metrics"][column]["mean"] <= 1.0
        assert set(row["breakdowns"]["category_per_class_f1"]) >= {"Board Governance", "None/Other"}
    # One shared MLM evaluation: every variant, base included, on each stage's kept validation set.
    assert data["mlm_sets"] == ["dapt", "tapt"]
    for row in data["rows"]:
        for name in ("dapt", "tapt"):
            score = row["mlm"][name]
            assert score["perplexity"] == pytest.approx(math.exp(score["loss"]))
    base, dapt, tapt = data["rows"]
    assert base["mlm"]["dapt"]["loss"] != dapt["mlm"]["dapt"]["loss"]
    markdown = (run_dir / "ablation.md").read_text()
    assert "| +DAPT+TAPT" in markdown and "e^loss" in markdown
    assert "MLM loss, dapt validation" in markdown and "(holdout)" in markdown and "Warning" not in markdown
    stage = json.loads((run_dir / "dapt" / "stage.json").read_text())
    assert stage["metrics"]["eval_perplexity"] == pytest.approx(math.exp(stage["metrics"]["eval_loss"]))


def test_each_finetune_keeps_its_per_item_holdout_predictions_and_they_give_its_metrics(finished_run):
    from sec_cybert.stages.metrics import macro_f1
    from sec_cybert.stages.predictions import read_predictions

    run_dir, result, _, run, tiny = finished_run
    stage = run.pipeline.consumers[0]
    holdout = [json.loads(line) for line in stage.holdout_file.read_text().splitlines() if line.strip()]
    category = stage.heads[0]
    for name in ("finetune-base", "finetune-dapt", "finetune-dapt-tapt"):
        records = read_predictions(run_dir / name, "holdout")
        assert [r["id"] for r in records] == [str(r["id"]) for r in holdout]
        assert all(r["groups"] == {"company": None, "filing": None} for r in records)  # the tiny labels have none
        assert [r["heads"]["category"]["truth"] for r in records] == [r["category"] for r in holdout]
        for record in records:
            scores = record["heads"]["category"]["scores"]
            assert len(scores) == 7 and sum(scores) == pytest.approx(1.0, abs=1e-4)
            assert record["heads"]["category"]["predicted"] == category.labels[scores.index(max(scores))]
            assert len(record["heads"]["specificity"]["scores"]) == 3  # P(level > k), k = 0..2
        # The metric the stage recorded is the metric of the predictions it kept.
        index = {label: i for i, label in enumerate(category.labels)}
        truth = [index[r["heads"]["category"]["truth"]] for r in records]
        predicted = [index[r["heads"]["category"]["predicted"]] for r in records]
        recorded = json.loads((run_dir / name / "stage.json").read_text())["metrics"]["category_macro_f1"]
        assert macro_f1(truth, predicted, sorted(set(truth))) == pytest.approx(recorded)
        assert read_predictions(run_dir / name, "eval") is not None  # eval kept too, for error analysis


def test_the_ablation_shows_intervals_and_paired_differences_in_words(finished_run):
    run_dir, *_ = finished_run
    data = json.loads((run_dir / "ablation.json").read_text())
    comparison = data["comparisons"]["finetune"]
    assert comparison["split"] == "holdout"
    # The tiny labels name no company or filing: items are resampled alone, and the table says so.
    assert comparison["group_by"] == "item" and "too narrow" in comparison["notes"][0]
    pairs = {(d["variant"], d["baseline"], d["metric"]) for d in comparison["differences"]}
    for metric in ("category_macro_f1", "specificity_macro_f1", "specificity_qwk"):
        assert {("+DAPT", "base", metric), ("+DAPT+TAPT", "base", metric), ("+DAPT+TAPT", "+DAPT", metric)} <= pairs
    for row in data["rows"]:
        interval = row["intervals"]["category_macro_f1"]
        assert interval["low"] <= interval["estimate"] <= interval["high"]
        assert interval["estimate"] == pytest.approx(row["metrics"]["category_macro_f1"]["mean"])
    markdown = (run_dir / "ablation.md").read_text()
    assert "Paired differences" in markdown and "p = " in markdown and "+DAPT+TAPT vs base:" in markdown
    assert "multi-bootstrap" in markdown and "Note: no company or filing" in markdown
    # Each fine-tune's model card carries its variant's intervals and differences, once.
    card = (run_dir / "finetune-dapt" / "README.md").read_text()
    assert card.count("## Ablation") == 1 and "Variant `+DAPT`" in card
    assert "+DAPT vs base:" in card and "+DAPT+TAPT vs +DAPT:" in card and "+DAPT+TAPT vs base:" not in card
    assert "category_macro_f1: " in card and "[" in card


def test_the_shared_mlm_loss_is_the_mean_over_every_masked_target(finished_run):
    import datasets
    import torch

    run_dir, *_ = finished_run
    data = json.loads((run_dir / "ablation.json").read_text())
    validation = datasets.load_from_disk(str(run_dir / "tapt" / "validation-set"))
    model = AutoModelForMaskedLM.from_pretrained(run_dir / "dapt").eval()
    total = targets = 0.0
    with torch.no_grad():
        for row in validation:  # one row at a time: no padding, no batching to get wrong
            ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
            logits = model(input_ids=ids).logits[0]
            chosen = labels[0] != -100
            total += float(torch.nn.functional.cross_entropy(logits[chosen], labels[0][chosen], reduction="sum"))
            targets += int(chosen.sum())
    by_variant = {row["variant"]: row for row in data["rows"]}
    assert by_variant["+DAPT"]["mlm"]["tapt"]["loss"] == pytest.approx(total / targets, rel=1e-5)


def test_rerun_reuses_finished_stages(finished_run):
    run_dir, _, _, run, _ = finished_run
    before = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/model.safetensors")}
    with capture_logs() as logs:
        run.pipeline.run(run_dir).ablation()
    assert sum(1 for e in logs if e["event"] == "stage already complete; reusing it") == 5
    assert before == {p: p.stat().st_mtime_ns for p in run_dir.glob("*/model.safetensors")}


def test_interrupted_stage_resumes_from_its_last_checkpoint(tmp_path, tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][:1]
    config["stages"][0]["training"].update(max_steps=4, save_steps=2, save_total_limit=None)
    run = load_run_config(config, plugin_manager=plugin_manager)
    run.pipeline.run(tmp_path)
    stage_dir = tmp_path / "dapt"
    # Simulate a crash after step 2: the final record and the later checkpoint never got written.
    (stage_dir / "stage.json").unlink()
    shutil.rmtree(stage_dir / "checkpoints" / "checkpoint-4")
    with capture_logs() as logs:
        run.pipeline.run(tmp_path)
    resumed = [e for e in logs if e["event"] == "resuming from checkpoint"]
    assert resumed and resumed[0]["checkpoint"].endswith("checkpoint-2")
    assert json.loads((stage_dir / "stage.json").read_text())["metrics"]["global_step"] == 4


def test_a_different_config_in_the_same_directory_is_refused(tmp_path, tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][:1]
    load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)
    config["stages"][0]["masker"]["probability"] = 0.2
    with pytest.raises(ConfigError, match="different config"):
        load_run_config(config, plugin_manager=plugin_manager).pipeline.run(tmp_path)


def test_python_api_assembles_the_same_chain(tmp_path, tiny_corpus, plugin_manager):
    from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
    from sec_cybert.stages import Training

    tiny = Training(per_device_train_batch_size=8, gradient_accumulation_steps=1, max_steps=1, save_strategy="no", logging_steps=1)
    pipe = Pipeline(
        encoder="tiny-modernbert",
        encoder_options=TINY_ENCODER_OPTIONS,
        hardware="cpu",
        stages=[
            stages.MLM.dapt(corpus.JsonlShards(tiny_corpus.shards), chunker=ConcatChunker(seq_len=64), training=tiny),
            stages.MLM.tapt(corpus.Paragraphs(tiny_corpus.paragraphs), chunker=ParagraphChunker(max_length=64), training=tiny),
            stages.FineTune.sec_cybert(tiny_corpus.train, eval_file=tiny_corpus.eval, max_length=64, training=tiny),
        ],
        plugin_manager=plugin_manager,
    )
    dapt, tapt, finetune = pipe.stages
    assert (dapt.max_tokens, dapt.masker.probability, type(tapt.masker).__name__) == (500_000_000, 0.30, "WholeWordMasker")
    reference_tapt = stages.MLM.tapt(corpus.Paragraphs(tiny_corpus.paragraphs)).training
    assert (reference_tapt.num_train_epochs, reference_tapt.per_device_train_batch_size) == (5, 32)
    result = pipe.run(tmp_path)
    assert (tmp_path / "finetune-dapt-tapt" / "heads.json").is_file()
    assert result.finetuned[("finetune", "+DAPT+TAPT", 42)].metrics["evaluated_on"] == "eval"


def test_labels_outside_the_label_set(tmp_path, tiny_corpus, plugin_manager):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "a paragraph", "category": "Board Governance", "specificity": "Generic Boilerplate"}, {"text": "b", "category": "Weather", "specificity": "Generic Boilerplate"}])
    stage = stages.FineTune.sec_cybert(bad)
    from sec_cybert.core.components import ReadReport

    with pytest.raises(DataError, match="category 'Weather' is not in the label set; allowed: Board Governance"):
        stage.read_labeled(bad, ReadReport())
    lenient = stages.FineTune.sec_cybert(bad, on_bad_record="skip")
    report = ReadReport()
    columns = lenient.read_labeled(bad, report)
    assert columns["text"] == ["a paragraph"] and report.kept == 1
    assert report.skipped == {"category 'Weather' is not in the label set": 1}


def test_finetune_before_pretraining_is_refused(tiny_corpus, plugin_manager):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = [config["stages"][2], config["stages"][0]]
    with pytest.raises(ConfigError, match="must come before the stages that use one"):
        load_run_config(config, plugin_manager=plugin_manager)


def test_sparse_prediction_gives_the_same_loss():
    import torch
    from transformers import ModernBertForMaskedLM

    from sec_cybert.testing import tiny_modernbert_config

    torch.manual_seed(0)
    config = tiny_modernbert_config(vocab_size=300, max_position_embeddings=64)
    model = ModernBertForMaskedLM(config).eval()
    ids = torch.randint(5, 300, (3, 40))
    labels = torch.where(torch.rand(3, 40) < 0.3, ids, torch.full_like(ids, -100))
    dense = model(input_ids=ids, labels=labels).loss
    model.sparse_prediction = True
    sparse = model(input_ids=ids, labels=labels)
    torch.testing.assert_close(sparse.loss, dense)
    assert sparse.logits.shape[0] == int((labels != -100).sum())


def test_report_draws_what_the_run_recorded(finished_run):
    from sec_cybert.sharing.report import build_report

    run_dir, *_ = finished_run
    report = build_report(run_dir)
    text = report.read_text()
    lineage = json.loads((run_dir / "lineage.json").read_text())
    for entry in lineage["stages"]:
        assert f"## {entry['stage']} ({entry['kind']}, variant {entry['variant']})" in text
        assert f"global_step {entry['metrics']['global_step']}" in text
    # A chart per stage, drawn from its training log, and the ablation's.
    for stage in ("dapt", "tapt", "finetune-dapt-tapt"):
        events = [json.loads(line) for line in (run_dir / stage / "training-log.jsonl").read_text().splitlines()]
        assert {e["event"] for e in events} >= {"log"} and (run_dir / "report" / f"{stage}.png").stat().st_size > 1000
    assert "## Ablation" in text and "| +DAPT+TAPT" in text
    page = (run_dir / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "<table>" in page
