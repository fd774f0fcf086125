"""Make the example plugins importable without installing them (CI installs only sec-cybert), and
run the sec-cybert-freeze example's own tests with this suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
for _src in sorted(_EXAMPLES.glob("*/src")):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

#: The tests a plugin author runs in their own package; collected beside the test that installs it.
FREEZE_PLUGIN_TESTS = _EXAMPLES / "sec-cybert-freeze" / "tests"


def pytest_collect_file(file_path, parent):
    if file_path == Path(__file__).with_name("test_freeze_plugin.py") and FREEZE_PLUGIN_TESTS.is_dir():
        return pytest.Dir.from_parent(parent, path=FREEZE_PLUGIN_TESTS)
    return None
