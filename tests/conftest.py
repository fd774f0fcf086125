from __future__ import annotations

import functools
import gc
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import structlog

from sec_cybert.testing import builtin_plugin_manager, tiny_pipeline_config, write_tiny_corpus

#: Session-scoped fixtures that train. Under pytest-xdist the test files that name one run in the
#: same worker (``pytest_xdist_make_scheduler``), so each trains once per run, not once per worker.
SHARED_TRAINING_FIXTURES = ("finished_run",)


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # One torch thread per worker process (and per process a test starts): the tiny models
        # gain nothing from a second, and a thread spinning on a core another worker holds costs
        # several times the work it does.
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


#: How many modules were imported when the heap was last frozen (``_freeze_what_was_imported``).
_modules_at_freeze = 0


def _freeze_what_was_imported() -> None:
    """Move what is alive now out of the garbage collector's sight when modules were imported
    since the last time: torch, transformers and the test modules after collection, the
    Trainer's modules (imported lazily, ~170K objects) after the first test that trains. Each
    Trainer's ``free_memory`` calls ``gc.collect()``, which otherwise walks those ~430K
    long-lived objects every time (0.27 s a Trainer, 3 of the demo's 14 s); the tests' own
    objects are collected as before."""
    global _modules_at_freeze
    if len(sys.modules) != _modules_at_freeze:
        gc.collect()
        gc.freeze()
        _modules_at_freeze = len(sys.modules)


def pytest_collection_finish(session):
    _freeze_what_was_imported()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    _freeze_what_was_imported()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (tox.ini): a test file is the unit a worker takes, so a module-scoped
    fixture is built once; the files that use a shared training fixture are one unit together.
    (xdist's ``loadgroup`` cannot do it here: it renames node ids, which pytest 9.2 ignores.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    # The order pytest_collection_modifyitems gives (slow files first), not xdist's default of
    # the files with the most tests first, which leaves a one-test file of a minute to the end.
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadFileScheduling

    root = config.rootpath

    @functools.cache
    def unit(path: str) -> str:
        """A test file's unit of work: the shared training fixture it names, else itself."""
        try:
            text = (root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return path
        return next((name for name in SHARED_TRAINING_FIXTURES if name in text), path)

    class FileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid.split("::", 1)[0])

    return FileScheduling(config, log)


def _builds_something_shared(item) -> bool:
    """The test uses a module-scoped fixture or a shared training fixture: its file holds a
    setup of seconds that the other tests of the file share."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        name in SHARED_TRAINING_FIXTURES or definitions[-1].scope in ("module", "class", "package")
        for name, definitions in info.name2fixturedefs.items()
        if definitions and name in info.names_closure
    )


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist the files that hold a slow test start first, then those with a shared
    setup (a worker takes a file at a time, in this order), so that no worker is left with a
    long one at the end. A run without xdist keeps the collection's order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow, shared = set(), set()
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if item.get_closest_marker("slow"):
            slow.add(path)
        if _builds_something_shared(item):
            shared.add(path)

    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return 0 if path in slow else 1 if path in shared else 2

    items.sort(key=rank)


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


#: Optimizer steps per Trainer under ``fast_trainers`` (test_demo, and the docs runner's fast mode).
FAST_STEPS = 3


@pytest.fixture(scope="session")
def preloaded_python():
    """``preloaded_python.run([script, *args], env=..., timeout=...)``: a Python process forked
    from a server that imported torch, transformers and sec_cybert once
    (:mod:`sec_cybert.testing.preloaded`), for tests that need a process to kill or to compare
    with, without ~5 s of imports each."""
    from sec_cybert.testing.preloaded import PreloadedPython

    return PreloadedPython()


@pytest.fixture
def fast_trainers(monkeypatch):
    """Every Trainer stops after ``FAST_STEPS`` optimizer steps, for a test that runs a shipped
    config (the demo's) and checks what the run writes, not how well it trained. Configs,
    fingerprints and plans are untouched. ``SEC_CYBERT_FAST=0`` runs them at full length."""
    if os.environ.get("SEC_CYBERT_FAST", "1") == "0":
        return
    import attrs

    from sec_cybert.stages.training import Training

    original = Training.trainer_arguments

    def capped(self, *args, **kwargs):
        return original(attrs.evolve(self, max_steps=min(self.max_steps or FAST_STEPS, FAST_STEPS)), *args, **kwargs)

    monkeypatch.setattr(Training, "trainer_arguments", capped)


@pytest.fixture
def builtins_only(monkeypatch):
    """Only sec_cybert's own plugins load (``SEC_CYBERT_PLUGINS=""``), with a fresh plugin manager
    before and after: a command-line test sees no plugin another test installed."""
    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    from sec_cybert.plugins.registry import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()
