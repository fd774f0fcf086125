from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import structlog

from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config, write_tiny_corpus


@pytest.fixture(scope="session")
def plugin_manager():
    """Built-in plugins only, so a stray installed plugin cannot change test results."""
    return builtin_plugin_manager()


@pytest.fixture
def tiny_corpus(tmp_path):
    return write_tiny_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session", autouse=True)
def _session_cache_in_tmp(tmp_path_factory):
    """The tokenization cache and scratch files of session- and module-scoped fixtures (set up
    before any test's own): never under $HOME."""
    previous = os.environ.get("SEC_CYBERT_CACHE")
    os.environ["SEC_CYBERT_CACHE"] = str(tmp_path_factory.mktemp("sec-cybert-cache-session"))
    yield
    if previous is None:
        os.environ.pop("SEC_CYBERT_CACHE", None)
    else:
        os.environ["SEC_CYBERT_CACHE"] = previous


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    """Each test's tokenization cache and scratch files in a directory of its own: the suite
    never writes to $HOME, and no test sees another's cache entries."""
    monkeypatch.setenv("SEC_CYBERT_CACHE", str(tmp_path_factory.mktemp("sec-cybert-cache")))


@pytest.fixture(autouse=True)
def _reset_structlog():
    # The CLI configures structlog globally; tests that call it must not leak that into others.
    yield
    structlog.reset_defaults()


class FinishedRun(NamedTuple):
    """The shared finished run: its directory, the pipeline's result, the ablation table, the
    run config it was loaded from, and the tiny corpus it trained on."""

    run_dir: Path
    result: Any
    table: Any
    run: Any
    corpus: Any


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> FinishedRun:
    """One tiny DAPT -> TAPT -> fine-tune run (``tiny_pipeline_config`` on ``write_tiny_corpus``)
    with its ablation, trained once per session and read by the pipeline, model-card and report
    tests. A test may add files to it (a report, cards rewritten as the host writes them, a
    re-run that reuses every stage) but must not change what it trained."""
    from sec_cybert.host.pipeline import load_run_config

    root = tmp_path_factory.mktemp("finished-run")
    tiny = write_tiny_corpus(root / "corpus")
    run = load_run_config(tiny_pipeline_config(tiny), plugin_manager=builtin_plugin_manager())
    result = run.pipeline.run(root / "run")
    table = result.ablation()
    return FinishedRun(root / "run", result, table, run, tiny)


@pytest.fixture
def builtins_only(monkeypatch):
    """Only sec_cybert's own plugins load (``SEC_CYBERT_PLUGINS=""``), with a fresh plugin manager
    before and after: a command-line test sees no plugin another test installed."""
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    from sec_cybert.plugins.registry import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()
