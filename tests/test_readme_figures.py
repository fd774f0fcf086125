"""benchmarks/readme_figures.py, without its expensive measurements: the README claims it finds,
the table it writes into RESULTS.md, and the timing of cheap stand-in commands.

Not a timed test: the stand-ins only show that a time, tox's split and a failure are recorded.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_figures.py"


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("readme_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_figures"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["readme_figures"]


def stand_in(figures, code: str, parts=None):
    return figures.Figure("stand-in", "a stand-in", {}, lambda out, tox: [sys.executable, "-c", code], *([parts] if parts else []))


def test_every_figure_finds_its_claim_in_the_readme(figures):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for figure in figures.FIGURES.values():
        said = figures.readme_claims(figure, readme)
        assert "not in the README" not in said, f"{figure.name}: the README no longer words it so; update FIGURES"
        assert said.startswith("about ")


def test_a_dry_run_prints_the_table_and_writes_nothing(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--results", str(results)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert results.read_text() == "# Benchmark results\n"
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ") and "not run" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| the demo, end to end", "| examples/pipeline_from_yaml.py --fast"]
    assert all(row.split(" | ")[1].startswith("about ") for row in rows)
    assert "cores" in completed.stdout and "A dry run: nothing was measured." in completed.stdout
    assert "would run demo:" in completed.stderr and "would run yaml-fast:" in completed.stderr


def test_the_test_figures_need_tox_and_say_how_to_get_it(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--tests", "--tox", f"{sys.executable} -c 'raise SystemExit(1)'"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "pip install tox" in completed.stderr and completed.stdout == ""


def test_a_command_is_timed_and_toxs_split_kept(figures, tmp_path):
    summary = "print('  py: OK (3.50=setup[1.25]+cmd[2.25] seconds)')"
    result = figures.measure(stand_in(figures, summary, figures.tox_parts), [], 2, {}, lambda message: None)
    assert result.failure is None and len(result.seconds) == 2 and all(s > 0 for s in result.seconds)
    assert result.parts == {"install": [1.25, 1.25], "tests": [2.25, 2.25]}


def test_a_failing_command_is_reported_not_timed(figures):
    logged = []
    result = figures.measure(stand_in(figures, "import sys; print('boom'); sys.exit(3)"), [], 3, {}, logged.append)
    assert (result.failure, result.seconds) == ("exit 3", [])
    assert any("boom" in line for line in logged)
    table = figures.section([result], "", when="now", how="test", where="abc", start_load=0.0)
    assert "failed (exit 3)" in table


def test_the_docs_and_examples_share_comes_from_the_junit_report(figures, tmp_path):
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_docs_run" name="a" time="10.5"/>'
        '<testcase classname="tests.test_examples" name="b" time="4.5"/>'
        '<testcase classname="tests.test_cli" name="c" time="100"/>'
        "</testsuite></testsuites>"
    )
    assert figures.tox_parts("", tmp_path) == {"docs and examples": 15.0}


def test_the_section_replaces_the_last_one_and_leaves_the_rest(figures):
    first = figures.section([], "", when="then", how="x", where="a", start_load=0.0)
    second = figures.section([], "", when="now", how="x", where="b", start_load=0.0)
    text = figures.update_results("# Results\n\n## Corpus\n\ntable\n", first)
    assert text.startswith("# Results\n\n## Corpus\n\ntable\n\n") and text.count(figures.START) == 1
    updated = figures.update_results(text + "\n## Later\n", second)
    assert "Measured now" in updated and "Measured then" not in updated
    assert updated.count(figures.START) == 1 and updated.endswith("\n## Later\n")
