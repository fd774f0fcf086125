from __future__ import annotations

import os

import pytest
import structlog

from sec_cybert.testing import builtin_plugin_manager, write_tiny_corpus


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


@pytest.fixture
def builtins_only(monkeypatch):
    """Only sec_cybert's own plugins load (``SEC_CYBERT_PLUGINS=""``), with a fresh plugin manager
    before and after: a command-line test sees no plugin another test installed."""
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    from sec_cybert.plugins.registry import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()
