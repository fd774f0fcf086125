"""Model cards for every saved directory (hub front matter, the chain back to the base), and
push_to_hub against a stand-in HfApi (no network)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import huggingface_hub
import pytest
import yaml

from sec_cybert.core.context import StageResult
from sec_cybert.sharing.hub import HubError, push_to_hub
from sec_cybert.sharing.modelcard import (
    CARD_FILE,
    read_card_record,
    read_front_matter,
    stage_chain,
    write_model_card,
)

SEED = 7  # tiny_pipeline_config's seed


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, f"{path} has no YAML front matter"
    return yaml.safe_load(match.group(1))


def results_of(meta: dict) -> list[dict]:
    (entry,) = meta["model-index"]
    return entry["results"]


@pytest.fixture(scope="module")
def cards(finished_run):
    """The session's tiny DAPT -> TAPT -> fine-tune run with its ablation (``finished_run``,
    tests/conftest.py), a card written into every directory from the stage records, as the host
    does after stage.json. The cards the host wrote (the fine-tunes' with the ablation's section)
    are put back afterwards: the run is shared with other tests."""
    names = ("dapt", "tapt", "finetune-base", "finetune-dapt", "finetune-dapt-tapt")
    host_cards = {name: (finished_run.run_dir / name / CARD_FILE).read_bytes() for name in names}
    written = {}
    for name in names:
        result = StageResult.load(finished_run.run_dir / name)
        written[name] = (result, write_model_card(result, stage_chain(result), seed=SEED))
    yield finished_run.run_dir, written
    for name, card in host_cards.items():
        (finished_run.run_dir / name / CARD_FILE).write_bytes(card)


def test_every_saved_directory_gets_a_card_that_the_hub_library_parses(cards, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, written = cards
    for name, (result, path) in written.items():
        assert path == result.output_dir / CARD_FILE
        meta = front_matter(path)
        assert meta["library_name"] == "transformers"
        assert {"sec-cybert", "modernbert"} <= set(meta["tags"])
        assert "base_model" not in meta  # the base is a local random-init encoder, not a hub model
        card = huggingface_hub.ModelCard.load(path)  # raises on a model-index it cannot read
        assert card.data.library_name == "transformers"
        assert card.data.model_name == name
        assert card.data.eval_results, name
        assert card.text.startswith(f"\n# {name}\n") or card.text.lstrip().startswith(f"# {name}")


def test_an_mlm_card_gives_loss_perplexity_corpus_budget_dedup_and_contamination(cards):
    run_dir, written = cards
    result, path = written["tapt"]
    meta = front_matter(path)
    assert meta["pipeline_tag"] == "fill-mask"
    (entry,) = results_of(meta)
    assert entry["task"]["type"] == "fill-mask"
    assert entry["dataset"]["split"] == "validation"
    values = {m["type"]: m["value"] for m in entry["metrics"]}
    loss = result.metrics["eval_loss"]
    assert values["loss"] == pytest.approx(loss, abs=1e-4)
    assert values["perplexity"] == pytest.approx(math.exp(loss), rel=1e-4)
    text = path.read_text()
    dapt = StageResult.load(run_dir / "dapt")
    selection = dapt.report["selection"]
    # The chain back to the base: the base, DAPT with its corpus and counts, then TAPT.
    assert "random-init `tiny-modernbert`" in text
    assert "stages: base -> dapt -> tapt" in text
    assert f"kept {selection['documents_kept']:,} of {selection['documents_in']:,} documents" in text
    assert f"{selection['tokens_kept']:,} of {selection['tokens_in']:,} tokens" in text
    assert "jsonl-shards `corpus/shards`" in text and "paragraphs `corpus/paragraphs.jsonl`" in text
    assert "duplicates (exact): 0 exact and 0 near copies, 0 dropped" in text
    assert "tapt vs finetune.holdout: 0 exact, 0 near copies" in text
    assert f"MLM eval loss {dapt.metrics['eval_loss']:.4f}" in text
    assert f"seeds: dapt {SEED}, tapt {SEED}" in text
    assert "transformers 5." in text and "sec_cybert " in text
    assert str(run_dir.parent) not in text  # no absolute paths of the machine that trained


def test_a_finetune_card_has_per_head_results_on_the_split_they_were_measured_on(cards):
    _, written = cards
    result, path = written["finetune-dapt-tapt"]
    meta = front_matter(path)
    assert "pipeline_tag" not in meta  # no transformers pipeline loads several heads
    results = results_of(meta)
    assert [r["task"]["name"] for r in results] == ["category (softmax, 7 labels)", "specificity (coral, 4 levels)"]
    for entry in results:
        assert entry["task"]["type"] == "text-classification"
        assert entry["dataset"]["split"] == result.metrics["evaluated_on"] == "holdout"
        assert "holdout.jsonl" in entry["dataset"]["name"]
    category, specificity = ({m["name"]: m for m in r["metrics"]} for r in results)
    assert category["category macro F1"]["value"] == pytest.approx(result.metrics["category_macro_f1"], abs=1e-4)
    assert category["category macro F1"]["args"] == {"average": "macro"}
    assert category["category accuracy"]["value"] == pytest.approx(result.metrics["category_accuracy"], abs=1e-4)
    assert "category quadratic weighted kappa" not in category  # QWK is for ordinal heads
    qwk = specificity["specificity quadratic weighted kappa"]
    assert qwk["type"] == "cohen_kappa" and qwk["args"] == {"weights": "quadratic"}
    assert qwk["value"] == pytest.approx(result.metrics["specificity_qwk"], abs=1e-4)
    text = path.read_text()
    assert "stages: base -> dapt -> tapt -> finetune" in text
    assert "`+DAPT+TAPT` variant" in text
    assert "Measured on the holdout split (`labels/holdout.jsonl`, 28 examples)." in text
    assert "train: `labels/train.jsonl`, 56 examples" in text
    assert f"seeds: dapt {SEED}, tapt {SEED}, finetune {SEED}" in text
    assert "MultiHeadClassifier.load" in text and "export_head" in text


def test_the_hub_library_keeps_each_head_its_own_result_when_it_rewrites_a_card(cards, tmp_path):
    """huggingface_hub keys a model-index entry by task and dataset: a card it loads and saves
    again (as the hub's own tools do) must still hold one result per head, not one merged entry."""
    _, written = cards
    _, path = written["finetune-dapt-tapt"]
    card = huggingface_hub.ModelCard.load(path)
    assert {r.dataset_config for r in card.data.eval_results} == {"category", "specificity"}
    card.save(tmp_path / "README.md")
    names = [r["task"]["name"] for r in results_of(front_matter(tmp_path / "README.md"))]
    assert names == ["category (softmax, 7 labels)", "specificity (coral, 4 levels)"]


def test_the_card_template_ships_with_the_package():
    import fnmatch
    from importlib import resources

    tomllib = pytest.importorskip("tomllib")  # python 3.11+
    template = resources.files("sec_cybert.sharing").joinpath("templates", "model_card.md")
    assert "{{ card_data }}" in template.read_text(encoding="utf-8")
    # An installed wheel holds it only if pyproject's package data names it.
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["sec_cybert"]
    assert any(fnmatch.fnmatch("sharing/templates/model_card.md", pattern) for pattern in patterns)


def test_the_base_variant_finetune_card_has_no_pretraining_stages(cards):
    _, written = cards
    _, path = written["finetune-base"]
    text = path.read_text()
    assert "stages: base -> finetune" in text
    assert "`base` variant" in text
    assert "dapt" not in front_matter(path)["tags"]


def test_a_card_is_a_function_of_the_records_and_remembers_its_seed(cards):
    _, written = cards
    result, path = written["finetune-dapt"]
    first = path.read_text()
    assert write_model_card(result, stage_chain(result), seed=SEED).read_text() == first
    # Rewritten later without the seed (stage.json holds none): the card's own record gives it.
    assert read_card_record(path) == {"stage": "finetune", "kind": "finetune", "fingerprint": result.fingerprint, "seed": SEED}
    assert write_model_card(result, stage_chain(result)).read_text() == first
    # The record itself may be passed in the chain: it is not listed twice.
    assert write_model_card(result, [*stage_chain(result), result], seed=SEED).read_text() == first


def test_an_exported_head_carries_its_own_card(cards, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from sec_cybert.sharing.export import export_head
    from sec_cybert.stages.classifier import MultiHeadClassifier

    run_dir, _ = cards
    out = export_head(run_dir / "finetune-dapt-tapt", "specificity", tmp_path / "specificity")
    meta = front_matter(out / CARD_FILE)
    assert meta["pipeline_tag"] == "text-classification"
    assert "multi-head-classifier" not in meta["tags"]
    (entry,) = results_of(meta)
    assert entry["task"]["name"] == "specificity (coral, 4 levels)"
    assert huggingface_hub.ModelCard.load(out / CARD_FILE).data.eval_results
    assert "number of thresholds with sigmoid > 0.5" in (out / CARD_FILE).read_text()
    # A trained fine-tune's head, exported: the same logits.
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["The audit committee oversees cybersecurity.", "We patch."], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = MultiHeadClassifier.load(run_dir / "finetune-dapt-tapt")(**batch)["logits_specificity"]
        got = AutoModelForSequenceClassification.from_pretrained(out).eval()(**batch).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _record(tmp_path: Path, **fields) -> StageResult:
    out = tmp_path / fields.pop("name", "dapt")
    out.mkdir(parents=True)
    (out / "config.json").write_text('{"model_type": "modernbert"}')
    defaults = dict(stage="dapt", kind="mlm", output_dir=out, init_from="answerdotai/ModernBERT-base", produces_variant=True)
    return StageResult(**{**defaults, **fields})


def test_a_hub_base_is_the_base_model_and_missing_numbers_are_left_out(tmp_path):
    result = _record(
        tmp_path,
        metrics={"eval_loss": 1000.0, "train_loss": 3.0},  # e^1000 overflows: no perplexity entry
        config={"corpus": {"kind": "paragraphs", "path": "/home/someone/data/p.jsonl"}, "max_tokens": 5000},
        report={"seed": 3, "selection": {"documents_in": 9, "documents_kept": 4, "tokens_in": 9000, "tokens_kept": 4800}},
    )
    meta = front_matter(write_model_card(result, []))
    assert meta["base_model"] == "answerdotai/ModernBERT-base"
    (entry,) = results_of(meta)
    assert [m["type"] for m in entry["metrics"]] == ["loss"]
    text = (result.output_dir / CARD_FILE).read_text()
    assert "[answerdotai/ModernBERT-base](https://huggingface.co/answerdotai/ModernBERT-base)" in text
    assert "seeds: dapt 3" in text
    assert "budget: max_tokens 5,000; kept 4 of 9 documents, 4,800 of 9,000 tokens" in text
    assert "/home/someone" not in text
    huggingface_hub.ModelCard.load(result.output_dir / CARD_FILE)


def test_a_stage_without_measurements_gets_a_card_without_model_index(tmp_path):
    mlm = _record(tmp_path, metrics={"train_loss": 3.0})
    assert "model-index" not in front_matter(write_model_card(mlm, []))
    finetune = _record(
        tmp_path,
        name="finetune-base",
        stage="finetune",
        kind="finetune",
        produces_variant=False,
        metrics={"train_loss": 1.0},
        config={"heads": [{"name": "category", "kind": "softmax", "labels": ["a", "b"]}], "pooling": "cls"},
    )
    path = write_model_card(finetune, [])
    assert "model-index" not in front_matter(path)
    assert "No evaluation split was given" in path.read_text()
    assert "seed: not recorded" in path.read_text()
    assert huggingface_hub.ModelCard.load(path).data.eval_results is None
    assert read_front_matter(path)["library_name"] == "transformers"


# --- push_to_hub --------------------------------------------------------------------------------
class FakeApi:
    calls: list = []
    fail: BaseException | None = None

    def __init__(self, token=None):
        FakeApi.calls.append(("init", {"token": token}))

    def create_repo(self, **kwargs):
        FakeApi.calls.append(("create_repo", kwargs))
        if FakeApi.fail is not None:
            raise FakeApi.fail

    def upload_folder(self, **kwargs):
        FakeApi.calls.append(("upload_folder", kwargs))
        return huggingface_hub.CommitInfo(
            commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="abc",
        )


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    FakeApi.calls, FakeApi.fail = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    directory = tmp_path / "finetune-dapt-tapt"
    (directory / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (directory / "validation-set").mkdir()
    kept_behind = ("stage-started.json", "checkpoints/checkpoint-2/optimizer.pt", "validation-set/data-00000-of-00001.arrow")
    for name in ("config.json", "model.safetensors", "README.md", "stage.json", *kept_behind):
        (directory / name).write_text("{}")
    return directory


def test_push_to_hub_creates_a_private_repo_and_uploads_the_directory(fake_hub):
    url = push_to_hub(fake_hub, "me/sec-cybert-demo", token="hf_x")
    assert url == "https://huggingface.co/me/sec-cybert-demo/commit/abc"
    (_, init), (_, create), (_, upload) = FakeApi.calls
    assert init == {"token": "hf_x"}
    assert create == {"repo_id": "me/sec-cybert-demo", "repo_type": "model", "private": True, "exist_ok": True}
    assert upload["folder_path"] == str(fake_hub) and upload["repo_id"] == "me/sec-cybert-demo"
    files = sorted(str(p.relative_to(fake_hub)) for p in fake_hub.rglob("*") if p.is_file())
    kept = list(huggingface_hub.utils.filter_repo_objects(files, ignore_patterns=upload["ignore_patterns"]))
    assert kept == ["README.md", "config.json", "model.safetensors", "stage.json"]
    push_to_hub(fake_hub, "me/public", private=False)
    assert FakeApi.calls[-2][1]["private"] is False


def _http_error(status: int) -> BaseException:
    from huggingface_hub.errors import HfHubHTTPError

    client = HfHubHTTPError.__bases__[0].__module__  # httpx or httpx2, whichever the hub uses
    http = __import__(client)
    request = http.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} error", response=http.Response(status, request=request))


def _connect_error() -> BaseException:
    from huggingface_hub.errors import HfHubHTTPError

    http = __import__(HfHubHTTPError.__bases__[0].__module__)
    return http.ConnectError("[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize(
    ("make_error", "says"),
    [
        (lambda: huggingface_hub.errors.OfflineModeIsEnabled("offline"), "offline mode is on (HF_HUB_OFFLINE)"),
        (lambda: huggingface_hub.errors.LocalTokenNotFoundError("no token"), "not logged in; run `hf auth login`"),
        (lambda: _http_error(401), "refused the token (401)"),
        (lambda: _http_error(403), "may not write there (403)"),
        (lambda: _http_error(500), "the hub answered 500"),
        (_connect_error, "the hub is unreachable (ConnectError"),
    ],
)
def test_push_to_hub_failures_are_one_line(fake_hub, make_error, says):
    FakeApi.fail = make_error()
    with pytest.raises(HubError) as caught:
        push_to_hub(fake_hub, "me/x")
    message = str(caught.value)
    assert says in message and "\n" not in message
    assert message.startswith(f"cannot push {fake_hub} to the Hugging Face Hub repo me/x: ")


def test_push_to_hub_refuses_a_directory_that_holds_no_model(fake_hub, tmp_path):
    with pytest.raises(HubError, match="not a saved model directory"):
        push_to_hub(tmp_path / "nothing", "me/x")
    assert FakeApi.calls == []


def test_a_head_that_predicts_one_class_is_called_out(tmp_path):
    heads = [{"name": "category", "kind": "softmax", "labels": ["a", "b", "c"]}]
    metrics = {
        "evaluated_on": "eval",
        "examples": 9,
        "category_macro_f1": 0.1667,
        "category_accuracy": 0.3333,
        "category_per_class_f1": {"c": None, "b": 0.0, "a": 0.5},
        "category_collapsed_to": ["a"],
    }
    result = _record(
        tmp_path,
        name="finetune-base",
        stage="finetune",
        kind="finetune",
        produces_variant=False,
        metrics=metrics,
        config={"heads": heads, "eval_file": "/data/labels/eval.jsonl"},
    )
    text = write_model_card(result, []).read_text()
    assert "**`category` predicted one class, a, for every example**" in text
    assert "| a | 0.5000 |\n| b | 0.0000 |\n| c | absent from the split |" in text  # the head's label order
    # huggingface_hub writes the dataset; ``config`` names the head (the hub keys results by it).
    assert results_of(front_matter(result.output_dir / CARD_FILE))[0]["dataset"] == {
        "type": "json",
        "name": "eval split (labels/eval.jsonl, 9 examples)",
        "config": "category",
        "split": "eval",
    }
