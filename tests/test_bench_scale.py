"""benchmarks/bench_scale.py runs every step without /work/shared (generated filings), at a tiny scale.

Not a timed test: it checks that each step ran in a process of its own and reported its time
and memory, and that the cached steps were served by their caches.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"


@pytest.mark.slow
def test_every_step_runs_on_generated_filings_and_reports_time_and_memory(tmp_path):
    out = tmp_path / "scale.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.0002", "--source", "generated", "--json", str(out), "--no-tracemalloc"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["setup"]["source"] == "generated" and report["setup"]["filings"] >= 5
    results = {r["step"]: r for r in report["results"]}
    assert set(results) == {
        "build", "stats", "prepare-cold", "prepare-warm", "contamination-cold", "contamination-cached", "plan-first", "plan-second"
    }
    assert not [r for r in results.values() if "error" in r], [r.get("error") for r in results.values()]
    for result in results.values():
        assert result["seconds"] >= 0 and result["peak_anon_mib"] > 0 and result["peak_rss_mib"] > 0
    # Each step in a process of its own (nothing of a step before it in memory), forked from the
    # server that imported the libraries once; the build's pool workers are the step's children.
    assert len({r["pid"] for r in results.values()}) == len(results)
    assert report["setup"]["preload_seconds"] > 0
    assert results["build"]["workers_peak_rss_mib"] > 0
    assert results["build"]["kept"] == report["setup"]["filings"]
    assert (results["prepare-cold"]["tokenization"], results["prepare-warm"]["tokenization"]) == ("miss", "hit")
    assert results["prepare-cold"]["tokens_kept"] == results["prepare-warm"]["tokens_kept"] > 0
    # The generated holdout holds lines of the sample filings: every copy has them.
    assert results["contamination-cold"]["excluded"] == results["contamination-cached"]["excluded"]
    assert results["contamination-cold"]["excluded"]["dapt"]["documents_cut"] == report["setup"]["filings"]
