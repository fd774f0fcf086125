"""Plugin edge cases: which distribution provided a component (and the keys that follow its
version), a plugin stage without ``evaluated_on``, sources that leave ``ReadReport.kept`` to the
host, the tracker check's own pipeline, errors that name the plugin and its distribution, and
the docs a third party needs."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
import textwrap
import types
from pathlib import Path

import attrs
import pytest
from structlog.testing import capture_logs

import sec_cybert
from sec_cybert.core.components import Document, ReadReport
from sec_cybert.errors import ConfigError, PluginError
from sec_cybert.plugins.registry import (
    Registry,
    get_plugin_manager,
    load_entry_point_plugins,
    new_plugin_manager,
    plugin_distributions,
    reset_plugin_manager,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"

ACME_PLUGIN = '''
from pathlib import Path
from typing import ClassVar

import attrs

from sec_cybert import hookimpl
from sec_cybert.datapath.chunking import ParagraphChunker
from sec_cybert.stages import StageOutcome


@attrs.frozen
class AcmeChunker:
    max_length: int = 64
    provides_word_ids: ClassVar[bool] = True

    def tokenize(self, documents, tokenizer):
        return ParagraphChunker(max_length=self.max_length).tokenize(documents, tokenizer)

    def group(self, tokenized):
        return ParagraphChunker(max_length=self.max_length).group(tokenized)


@attrs.frozen
class AcmeStage:
    """Trains nothing: what is tested is the host's bookkeeping around it."""

    name: str = "acme"
    produces_variant: ClassVar[bool] = False

    def output_dir(self, context):
        return Path(context.run_dir) / self.name

    def run(self, context):
        return StageOutcome(metrics={"answer": 42}, report={})


@attrs.frozen
class AcmeStageWithoutRun:
    name: str = "broken"
    produces_variant: ClassVar[bool] = False

    def output_dir(self, context):
        return Path(context.run_dir) / self.name


@hookimpl
def register_chunkers(register):
    register("acme-paragraph", AcmeChunker)


@hookimpl
def register_stages(register):
    register("acme-stage", AcmeStage)
    register("acme-broken-stage", AcmeStageWithoutRun)
'''


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(source, version=...)``: a distribution ``acme-edges`` whose entry point ``acme``
    (group ``sec_cybert``) is a module holding ``source``; call again to change its version."""
    site = tmp_path / "site"
    info = site / "acme_edges-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text("[sec_cybert]\nacme = acme_edges_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("SEC_CYBERT_PLUGINS", raising=False)

    def installed(source: str = ACME_PLUGIN, version: str = "1.0") -> Path:
        module = site / "acme_edges_plugin.py"
        if not module.is_file() or module.read_text() != textwrap.dedent(source):
            # Another module; the same one stays imported, so its classes stay the registered ones.
            sys.modules.pop("acme_edges_plugin", None)
            module.write_text(textwrap.dedent(source))
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: acme-edges\nVersion: {version}\n")
        reset_plugin_manager()
        return site

    yield installed
    sys.modules.pop("acme_edges_plugin", None)
    reset_plugin_manager()


def acme_manager():
    pm = new_plugin_manager()
    load_entry_point_plugins(pm, allowed=["acme"])
    return pm


# -- which distribution registered what ----------------------------------------------------------


def test_the_registry_records_each_registrations_distribution(install):
    install()
    registry = Registry.collect(acme_manager())
    chunker = registry.get("chunker", "acme-paragraph")
    assert (chunker.plugin, chunker.distribution, chunker.version) == ("acme", "acme-edges", "1.0")
    masker = registry.get("masker", "token")
    assert (masker.plugin, masker.distribution, masker.version) == ("builtin-maskers", "sec-cybert", sec_cybert.__version__)


def test_plugin_distributions_are_pluggys_not_a_scan_by_name(install):
    install()
    pm = acme_manager()
    assert "acme" in {pm.get_name(plugin) for plugin, _ in pm.list_plugin_distinfo()}
    assert plugin_distributions(pm)["acme"] == {"distribution": "acme-edges", "version": "1.0"}
    # A plugin registered from code under an entry point's name is not that distribution's.
    pm = new_plugin_manager()
    load_entry_point_plugins(pm, allowed=[])
    pm.register(types.SimpleNamespace(), name="acme")
    assert plugin_distributions(pm)["acme"] == {"distribution": None, "version": None}
    assert plugin_distributions(pm)["builtin-maskers"] == {"distribution": "sec-cybert", "version": sec_cybert.__version__}


def test_the_tokenization_cache_key_follows_the_chunker_plugins_version(install):
    from sec_cybert.corpus.token_cache import cache_key, chunker_identity
    from sec_cybert.datapath.chunking import ParagraphChunker

    install()
    from acme_edges_plugin import AcmeChunker

    old = chunker_identity(AcmeChunker())
    install(version="2.0")
    new = chunker_identity(AcmeChunker())
    assert old["plugins"] == {"acme-edges": "1.0"} and new["plugins"] == {"acme-edges": "2.0"}
    assert cache_key({"chunker": old}) != cache_key({"chunker": new})
    # A built-in chunker's identity is what it was: sec_cybert's version is keyed already.
    assert chunker_identity(ParagraphChunker(max_length=64)) == {
        "class": "sec_cybert.datapath.chunking.ParagraphChunker",
        "settings": {"max_length": 64},
    }


def test_the_cache_key_reads_the_runs_registry_not_the_process_wide_one(install, monkeypatch):
    """A pipeline run with its own plugin manager keys its chunker by that manager's plugins,
    even when the process-wide manager (here excluding the plugin) does not have them."""
    from sec_cybert.corpus.token_cache import chunker_identity

    install()
    from acme_edges_plugin import AcmeChunker

    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "builtin-chunkers")  # the process-wide one lacks acme
    reset_plugin_manager()
    assert "plugins" not in chunker_identity(AcmeChunker())
    run_registry = Registry.collect(acme_manager())
    assert chunker_identity(AcmeChunker(), run_registry)["plugins"] == {"acme-edges": "1.0"}


def test_a_finished_plugin_stage_is_not_reused_after_the_plugin_is_upgraded(install, tmp_path):
    from sec_cybert.core.context import StageContext
    from sec_cybert.host.lifecycle import run_stage

    def run(version):
        install(version=version)
        pm = acme_manager()
        registry = Registry.collect(pm)
        stage = registry.factory("stage", "acme-stage")()
        context = StageContext(run_dir=tmp_path / "run", init_from="acme/base", hardware=None, seed=0, plugin_manager=pm)
        return run_stage(stage, context, registry=registry, plugin_manager=pm)

    first = run("1.0")
    assert run("1.0").fingerprint == first.fingerprint  # the same packages: the same run, reused
    with pytest.raises(ConfigError):
        run("2.0")


def test_built_in_fingerprints_are_what_they_were(install, tmp_path, tiny_corpus):
    from sec_cybert.core.context import StageContext
    from sec_cybert.corpus import Paragraphs
    from sec_cybert.datapath.chunking import ParagraphChunker
    from sec_cybert.host.lifecycle import fingerprint_of
    from sec_cybert.plugins.registry import third_party_versions
    from sec_cybert.stages import MLM

    context = StageContext(run_dir=tmp_path, init_from="x", hardware=None, seed=1)
    settings = {"kind": "mlm", "name": "dapt"}
    before = json.dumps({"config": settings, "init_from": "x", "seed": 1}, sort_keys=True, default=str)
    expected = hashlib.sha256(before.encode()).hexdigest()[:16]
    assert fingerprint_of(settings, context) == expected
    assert fingerprint_of(settings, context, plugins={}) == expected
    assert fingerprint_of(settings, context, plugins={"acme-edges": "1.0"}) != expected

    install()
    from acme_edges_plugin import AcmeChunker

    registry = Registry.collect(acme_manager())
    builtin = MLM.tapt(Paragraphs(tiny_corpus.paragraphs), chunker=ParagraphChunker(max_length=64))
    assert third_party_versions(builtin, registry) == {}
    with_plugin = MLM.tapt(Paragraphs(tiny_corpus.paragraphs), chunker=AcmeChunker())
    assert third_party_versions(with_plugin, registry) == {"acme-edges": "1.0"}


# -- errors name the plugin and its distribution -------------------------------------------------


def test_a_plugin_that_fails_to_import_is_named_with_its_distribution_and_version(install):
    install("import module_that_does_not_exist\n", version="0.3")
    with pytest.raises(PluginError, match=r"plugin 'acme' \(acme-edges 0\.3\) failed to load"):
        acme_manager()


def test_a_hook_with_wrong_arguments_is_named_with_its_distribution(install):
    install("from sec_cybert import hookimpl\n\n@hookimpl\ndef register_maskers(registrar):\n    pass\n")
    with pytest.raises(PluginError, match=r"plugin 'acme' \(acme-edges 1\.0\).*register_maskers"):
        acme_manager()


def test_an_unknown_hook_is_named_with_its_distribution(install, monkeypatch):
    install("from sec_cybert import hookimpl\n\n@hookimpl\ndef register_masker(register):\n    pass\n")
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "acme")
    with pytest.raises(PluginError, match=r"plugin 'acme' \(acme-edges 1\.0\).*register_masker"):
        get_plugin_manager()


def test_registration_errors_name_the_distribution(install):
    install("from sec_cybert import hookimpl\n\n@hookimpl\ndef register_maskers(register):\n    register('Bad Name', dict)\n")
    with pytest.raises(PluginError, match=r"plugin 'acme' \(acme-edges 1\.0\) registered the masker name 'Bad Name'"):
        Registry.collect(acme_manager())
    install("from sec_cybert import hookimpl\n\n@hookimpl\ndef register_maskers(register):\n    register('token', dict)\n")
    with pytest.raises(PluginError, match=r"masker 'token' is registered twice") as caught:
        Registry.collect(acme_manager())
    assert "'acme' (acme-edges 1.0)" in str(caught.value)
    assert f"'builtin-maskers' (sec-cybert {sec_cybert.__version__})" in str(caught.value)


def test_a_registration_hook_that_raises_is_named_with_its_distribution(install):
    install("from sec_cybert import hookimpl\n\n@hookimpl\ndef register_maskers(register):\n    register('only-a-name')\n")
    with pytest.raises(PluginError, match=r"plugin 'acme' \(acme-edges 1\.0\).*register_maskers.*TypeError"):
        Registry.collect(acme_manager())


def test_a_stage_that_breaks_the_protocol_is_named_with_its_plugin(install):
    from sec_cybert.host.pipeline import Pipeline

    install()
    pm = acme_manager()
    stage = Registry.collect(pm).factory("stage", "acme-broken-stage")()
    with pytest.raises(ConfigError, match=r"acme-broken-stage.*plugin 'acme' \(acme-edges 1\.0\).*run\(context\)"):
        Pipeline(encoder="tiny-modernbert", stages=[stage], plugin_manager=pm)


# -- a plugin stage's metrics without evaluated_on -----------------------------------------------


def _table(*evaluated_on):
    from sec_cybert.results.ablation import AblationTable

    stages = [
        types.SimpleNamespace(name=f"probe{i}", ablation_metrics=lambda: ("accuracy",))
        for i in range(len(evaluated_on))
    ]
    variant = types.SimpleNamespace(name="base", checkpoint="ckpt")
    results = {}
    for stage, split in zip(stages, evaluated_on, strict=True):
        metrics = {"accuracy": 0.5} | ({"evaluated_on": split} if split else {})
        results[(stage.name, "base", 1)] = types.SimpleNamespace(metrics=metrics, output_dir=Path("out"))
    return AblationTable.from_results(stages, [variant], results, [1])


def test_a_stage_that_reports_no_split_is_said_so_not_none(tmp_path):
    table = _table(None)
    assert table.rows[0]["evaluated_on"] == []
    markdown = table.to_markdown()
    assert "None" not in markdown and "accuracy |" in markdown
    assert "split not reported" in markdown
    assert "None" not in table.chart_title() and "split not reported" in table.chart_title()
    assert table.plot(tmp_path / "ablation.png")
    mixed = _table("holdout", None)
    assert "holdout split" in mixed.to_markdown() and "probe1: split not reported" in mixed.to_markdown()
    assert _table("holdout").chart_title().startswith("Ablation on the holdout split")


# -- ReadReport.kept: the host counts what it receives -------------------------------------------


@attrs.frozen
class _QuietSource:
    """Written to the documented contract: yields documents, counts skips, leaves ``kept`` alone."""

    count: int = 3
    kept_per_document: int = 0

    def iter_documents(self, report):
        for i in range(self.count):
            report.kept += self.kept_per_document
            yield Document(id=f"d{i}", text=f"document number {i} " * 5)
        report.skip("empty text", "d-last")

    def describe(self):
        return "quiet"


def test_the_host_counts_the_documents_a_source_yields():
    from sec_cybert.corpus.dataset import documents_dataset
    from sec_cybert.testing.conformance import check_corpus_source

    report = ReadReport()
    with capture_logs() as logs:
        documents_dataset(_QuietSource(), report)
    assert report.kept == 3 and report.as_dict()["kept"] == 3
    assert not [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(check_corpus_source(_QuietSource())) == 3

    report = ReadReport()
    with capture_logs() as logs:
        documents_dataset(_QuietSource(kept_per_document=2), report)
    assert report.kept == 3
    (warning,) = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["source"] == "quiet" and (warning["source_count"], warning["received"]) == (6, 3)

    # What the contamination check excludes is received, then left out: not kept, counted skipped.
    report = ReadReport()
    first_excluded = types.SimpleNamespace(apply=lambda position, document: None if position == 0 else document)
    documents_dataset(_QuietSource(kept_per_document=1), report, exclusions=first_excluded)
    assert report.kept == 2 and report.total_skipped == 2


# -- the tracker check's own pipeline is not degenerate ------------------------------------------


@attrs.define
class _CountingTracker:
    calls: int = 0

    def start_stage(self, context, config):
        self.calls += 1

    def log(self, context, event, step, metrics):
        self.calls += 1

    def finish_stage(self, context, result):
        self.calls += 1

    def finish_run(self, run_dir, summary):
        self.calls += 1


def test_the_tracker_check_does_not_warn_about_its_own_pipeline(tmp_path):
    from sec_cybert.testing import builtin_plugin_manager
    from sec_cybert.testing.conformance import check_tracker

    with capture_logs() as logs:
        calls = check_tracker(_CountingTracker(), tmp_path, plugin_manager=builtin_plugin_manager())
    assert calls[0] == "start_stage"
    assert [entry for entry in logs if entry["event"] == "degenerate run"] == []


# -- what a third party had to read the source for -----------------------------------------------


def _signature(function):
    """``name(a, b, *, c=None)``: the signature without annotations, as the docs write it."""
    parts, keyword_only = [], False
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not keyword_only:
            parts.append("*")
            keyword_only = True
        if parameter.kind is parameter.VAR_KEYWORD:
            parts.append(f"**{parameter.name}")
        elif parameter.default is parameter.empty:
            parts.append(parameter.name)
        else:
            parts.append(f"{parameter.name}={parameter.default!r}")
    return f"{function.__name__}({', '.join(parts)})"


def test_plugins_md_gives_every_conformance_helpers_signature():
    from sec_cybert.testing import conformance

    text = (DOCS / "plugins.md").read_text()
    checks = [f for name, f in vars(conformance).items() if name.startswith("check_") and inspect.isfunction(f)]
    assert len(checks) >= 7
    for check in checks:
        assert _signature(check) in text, f"docs/plugins.md lacks `{_signature(check)}`"


def test_plugins_md_documents_what_the_source_was_read_for():
    from sec_cybert.planning.plan import PlanContext, StagePlan

    text = (DOCS / "plugins.md").read_text()
    for field in attrs.fields(PlanContext):
        assert f"`planning.{field.name}`" in text, f"PlanContext.{field.name}"
    assert re.search(r"return StagePlan\(\s*stage=", text), "an example that builds a StagePlan"
    for field in ("documents", "tokens", "sequences_train", "optimizer_steps", "warmup_steps", "notes"):
        assert field in {f.name for f in attrs.fields(StagePlan)} and f"`{field}`" in text
    for phrase in ("`report.kept`", "`files()`", "`path`", "`context.hardware`", "`evaluated_on`", "`tokenize_settings()`"):
        assert phrase in text, phrase
    hooks = (DOCS / "hooks.md").read_text()
    for phrase in ("`report.kept`", "`files()`", "`tokenize_settings()`", "`plan(planning)`", "`evaluated_on`"):
        assert phrase in hooks, phrase
    assert re.search(r"versions\s+of\s+the\s+distributions\s+that\s+(provided|registered)", text)
