"""The layout holds: data flows down the floors, no module outgrows one job, and every import path
that moved still imports, with a warning naming where it went."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "sec_cybert"


def test_the_import_linter_contracts_in_pyproject_hold() -> None:
    # In a process of its own: import-linter configures logging with dictConfig, which would
    # silence the loggers (transformers') that later tests in this process read.
    run = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, no_logo=True))"
    )
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_contract_names_every_floor_of_the_package() -> None:
    """``exhaustive = true`` is what makes a new top-level module or package pick a floor."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    assert layers.get("exhaustive") is True
    assert len(layers.get("ignore_imports", [])) <= 5


def _modules() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_source_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 500, f"{path.name} has {lines} lines: split it along its concerns"


def test_the_library_imports_no_path_that_moved() -> None:
    from sec_cybert._moved import MOVED

    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            found += [f"{path.relative_to(SOURCE)}:{node.lineno} {name}" for name in names if name in MOVED]
    assert found == []


def _moved_paths() -> list[str]:
    from sec_cybert._moved import MOVED

    return sorted(MOVED)


@pytest.mark.parametrize("old", _moved_paths())
def test_a_moved_path_imports_with_a_deprecation_warning_naming_the_new_one(old: str, monkeypatch) -> None:
    from sec_cybert._moved import MOVED

    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=MOVED[old][0].replace(".", r"\.")):
        module = importlib.import_module(old)
    for new in MOVED[old]:
        target = importlib.import_module(new)
        public = [name for name in vars(target) if not name.startswith("_")]
        assert public and all(getattr(module, name) is getattr(target, name) for name in public), new


def test_an_old_path_that_is_one_module_is_that_module(monkeypatch) -> None:
    """So a test or plugin that sets an attribute through the old path changes what runs."""
    import sec_cybert.datapath.masking as masking

    monkeypatch.delitem(sys.modules, "sec_cybert.masking", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module("sec_cybert.masking")
    assert old is masking


def test_the_public_face_imports_without_deprecation_warnings() -> None:
    code = "import sec_cybert, sec_cybert.cli\nfrom sec_cybert import Pipeline, stages, corpus, hookimpl"
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
