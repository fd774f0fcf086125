from __future__ import annotations

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


@pytest.fixture(autouse=True)
def _reset_structlog():
    # The CLI configures structlog globally; tests that call it must not leak that into others.
    yield
    structlog.reset_defaults()
