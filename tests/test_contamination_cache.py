"""The contamination check is cached by its inputs' content: a second check does no comparison work."""

from __future__ import annotations

import json
from collections import Counter

import attrs
import pytest

from sec_cybert.corpus.containment import ContainmentIndex
from sec_cybert.corpus.contamination import ContaminationPolicy
from sec_cybert.corpus.contamination_cache import ContaminationCache
from sec_cybert.corpus.dedup import NearDuplicateIndex


@pytest.fixture
def calls(monkeypatch):
    """How often the check compares a text with the protected ones (every comparison goes
    through one of these), and how often a corpus is read."""
    counted: Counter[str] = Counter()
    for cls, method in ((NearDuplicateIndex, "find"), (ContainmentIndex, "scan"), (NearDuplicateIndex, "add")):
        original = getattr(cls, method)

        def counting(self, *args, _original=original, _name=f"{cls.__name__}.{method}", **kwargs):
            counted[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, counting)
    return counted


def _pipeline(tiny, plugin_manager, **policy):
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import tiny_pipeline_config

    config = tiny_pipeline_config(tiny)
    if policy:
        config["contamination"] = policy
    return load_run_config(config, plugin_manager=plugin_manager).pipeline


@pytest.fixture
def contaminated(tmp_path):
    from sec_cybert.testing import write_jsonl, write_tiny_corpus

    tiny = write_tiny_corpus(tmp_path / "corpus")
    holdout = [json.loads(line) for line in tiny.holdout.read_text().splitlines()]
    paragraphs = [json.loads(line) for line in tiny.paragraphs.read_text().splitlines()]
    write_jsonl(tiny.paragraphs, [*paragraphs, {"id": "leak1", "text": holdout[0]["text"]}])
    shard = tiny.shards / "shard-00000.jsonl"
    filings = [json.loads(line) for line in shard.read_text().splitlines()]
    filings[0]["text"] += "\n" + holdout[2]["text"]
    write_jsonl(shard, filings)
    return tiny


def _scanned(calls: Counter[str]) -> int:
    return calls["NearDuplicateIndex.find"] + calls["ContainmentIndex.scan"]


def test_a_second_check_on_the_same_inputs_compares_nothing_and_reports_the_same(
    contaminated, plugin_manager, calls
):
    first = _pipeline(contaminated, plugin_manager).contamination_check()
    assert _scanned(calls) > 0 and first.exclusions["dapt"] and first.exclusions["tapt"]
    calls.clear()
    # A new Pipeline, as `plan` and then `run` build one each.
    second = _pipeline(contaminated, plugin_manager).contamination_check()
    assert sum(calls.values()) == 0
    assert second == first
    assert second.as_dict() == first.as_dict()
    assert {name: e.digest for name, e in second.exclusions.items()} == {
        name: e.digest for name, e in first.exclusions.items()
    }


def test_a_changed_corpus_file_holdout_paragraph_or_threshold_misses(contaminated, plugin_manager, calls):
    from sec_cybert.testing import write_jsonl

    first = _pipeline(contaminated, plugin_manager).contamination_check()

    # One DAPT shard changed: DAPT is checked again, TAPT and the fine-tune files are not.
    shard = contaminated.shards / "shard-00000.jsonl"
    filings = [json.loads(line) for line in shard.read_text().splitlines()]
    filings[1]["text"] += "\nOne more line that is in no holdout paragraph at all, for the test."
    write_jsonl(shard, filings)
    calls.clear()
    second = _pipeline(contaminated, plugin_manager).contamination_check()
    assert calls["ContainmentIndex.scan"] == len(filings) * len(list(contaminated.shards.glob("*.jsonl")))
    assert second.exclusions["dapt"] == first.exclusions["dapt"]

    # One holdout paragraph changed: every pretraining corpus and the fine-tune pairs again.
    holdout = [json.loads(line) for line in contaminated.holdout.read_text().splitlines()]
    holdout[-1]["text"] += " Also reviewed by the board."
    write_jsonl(contaminated.holdout, holdout)
    calls.clear()
    _pipeline(contaminated, plugin_manager).contamination_check()
    assert calls["ContainmentIndex.scan"] > len(filings)  # DAPT filings and TAPT paragraphs
    assert calls["NearDuplicateIndex.find"] > 0

    # Another threshold: checked again; then the same threshold again: cached.
    calls.clear()
    _pipeline(contaminated, plugin_manager, threshold=0.9).contamination_check()
    assert _scanned(calls) > 0
    calls.clear()
    _pipeline(contaminated, plugin_manager, threshold=0.9).contamination_check()
    assert sum(calls.values()) == 0


def test_the_policy_acts_on_cached_findings(contaminated, plugin_manager, calls):
    excluded = _pipeline(contaminated, plugin_manager).contamination_check()
    calls.clear()
    warned = _pipeline(contaminated, plugin_manager, pretraining="warn").contamination_check()
    assert sum(calls.values()) == 0
    assert warned.overlaps == excluded.overlaps
    assert not warned.exclusions["dapt"] and excluded.exclusions["dapt"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "not json",
        lambda text: json.dumps({**json.loads(text), "findings": {"overlaps": []}}),
        lambda text: text.replace('"exact": 1', '"exact": 2').replace('"exact": 0', '"exact": 3'),
    ],
    ids=["truncated", "not-json", "findings-replaced", "a-count-changed"],
)
def test_a_damaged_entry_is_ignored_with_a_warning_and_computed_again(
    contaminated, plugin_manager, calls, damage
):
    from structlog.testing import capture_logs

    first = _pipeline(contaminated, plugin_manager).contamination_check()
    entries = sorted(ContaminationCache.default().directory.glob("*.json"))
    assert len(entries) == 3  # dapt, tapt, the fine-tune files
    for entry in entries:
        entry.write_text(damage(entry.read_text()))
    calls.clear()
    with capture_logs() as logs:
        again = _pipeline(contaminated, plugin_manager).contamination_check()
    damaged = [e for e in logs if e["event"].startswith("contamination cache entry is damaged")]
    assert len(damaged) == 3 and all(e["log_level"] == "warning" for e in damaged)
    assert _scanned(calls) > 0 and again == first
    calls.clear()
    assert _pipeline(contaminated, plugin_manager).contamination_check() == first  # stored afresh
    assert sum(calls.values()) == 0


def test_an_unwritable_cache_only_warns(contaminated, plugin_manager, monkeypatch, tmp_path):
    from structlog.testing import capture_logs

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SEC_CYBERT_CACHE", str(blocker))
    with capture_logs() as logs:
        report = _pipeline(contaminated, plugin_manager).contamination_check()
    assert report.exclusions["dapt"]
    assert any(e["event"] == "contamination check not cached" for e in logs)


def test_a_stage_without_data_files_is_checked_every_time(contaminated, plugin_manager, calls):
    """A corpus the host cannot fingerprint by content is never served from the cache."""
    pipeline = _pipeline(contaminated, plugin_manager)

    @attrs.frozen
    class InMemory:
        name: str = "memory"
        produces_variant: bool = True

        def pretraining_documents(self, report):
            from sec_cybert.core.components import Document

            return iter([Document("m1", "Nothing here is held out, but it is still checked each time.")])

    from sec_cybert.corpus.contamination import check_contamination
    from sec_cybert.host.identities import stage_identities
    from sec_cybert.plugins.registry import get_registry

    stage = InMemory()
    assert stage_identities([stage], get_registry(plugin_manager)) == {"memory": None}
    labeled = {s.name: s.labeled_documents() for s in pipeline.stages if hasattr(s, "labeled_documents")}
    for _ in range(2):
        calls.clear()
        check_contamination(
            {"memory": stage.pretraining_documents}, labeled, ContaminationPolicy(), identities={"memory": None}
        )
        assert calls["ContainmentIndex.scan"] == 1
