"""benchmarks/gpu_check.sh, the one-command GPU check: its CPU-checkable parts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")


def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    # The venv's own python first on PATH, as `. .venv/bin/activate` would put it.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "PATH": path, **(env or {})}, cwd=ROOT
    )


def test_the_dry_run_lists_every_step_within_the_budget_and_touches_nothing(tmp_path):
    before = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    completed = _run("--dry-run", "--results", str(tmp_path / "rows.md"))
    assert completed.returncode == 0, completed.stderr
    steps = [line for line in completed.stdout.splitlines() if line.startswith("== ")]
    names = " / ".join(steps)
    for expected in ("venv", "this project, without dependencies", "every dependency imports", "requires_gpu tests", "ModernBERT-large 4 x 8192", "TAPT at 512 packed"):
        assert expected in names, names
    limits = [int(line.split("(limit ")[1].split("s)")[0]) for line in steps]
    assert sum(limits) <= 600 and "--no-index" in names  # the GPU machine reaches no package index
    assert not (tmp_path / "rows.md").exists() and (ROOT / "benchmarks" / "RESULTS.md").read_text() == before


def test_an_unknown_option_is_one_line_and_exit_2():
    completed = _run("--bogus")
    assert completed.returncode == 2 and "unknown option --bogus" in completed.stderr


def test_a_spent_budget_skips_the_remaining_steps_and_fails(tmp_path):
    completed = _run("--dry-run", "--results", str(tmp_path / "rows.md"), env={"GPU_CHECK_SECONDS": "5"})
    assert completed.returncode == 1 and "budget is spent" in completed.stdout


@pytest.mark.slow
def test_the_cpu_smoke_run_measures_a_tiny_shape_and_writes_rows_where_told(tmp_path):
    rows = tmp_path / "RESULTS.md"
    completed = _run("--cpu-smoke", "--results", str(rows), env={"OUT": str(tmp_path)}, timeout=600)
    text = rows.read_text()
    assert "### GPU check: CPU" in text and "--cpu-smoke" in text, completed.stdout[-3000:]
    table = [line for line in text.splitlines() if line.startswith("| CPU")]
    assert len(table) == 2  # checkpointing on and off
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2].replace(".", "").isdigit() and cells[4].endswith("GiB") and cells[5].endswith("GiB"), line
        assert abs(float(cells[6].rstrip("%"))) < 10  # preflight within 10 % of the tracked peak
    assert "| ours: packed" in text and "| reference:" in text  # TAPT's table
    assert (tmp_path / "gpu_check.md").read_text() == text  # what comes back from the device tool
    # On a CPU the GPU tests are skipped, not failed.
    assert "requires_gpu tests: exit 0" in completed.stdout, completed.stdout[-3000:]
    assert completed.returncode == 0, completed.stdout[-3000:]
