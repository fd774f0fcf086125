"""Cleaning throughput (MB of HTML per second on one core) and build peak memory at 1x and 4x input.

    python benchmarks/corpus/bench_clean.py [--html DIR] [--repeat 3]

DIR defaults to /work/shared/data/filings (real 10-Ks) when present, else the test fixtures.
Peak memory is measured in a fresh interpreter running ``build_shards`` with 2 worker processes
over N symlinked copies of the input, so 4x means four times as many filings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sec_cybert.corpus.edgar_source import iter_filing_paths
from sec_cybert.corpus.html_clean import clean_html

ROOT = Path(__file__).resolve().parents[2]
REAL = Path("/work/shared/data/filings")
FIXTURES = ROOT / "tests" / "corpus" / "fixtures"

MEASURE = """
import json, resource, sys
from pathlib import Path
from sec_cybert.corpus.build import build_shards
s = build_shards(Path(sys.argv[1]), Path(sys.argv[2]), min_chars=1000, workers=2)
print(json.dumps({"kept": s.kept, "files": s.files,
    "parent_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def clean_throughput(paths: list[Path], repeat: int) -> dict[str, float]:
    blobs = [p.read_bytes() for p in paths]
    total = sum(len(b) for b in blobs)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        chars = sum(len(clean_html(b).text) for b in blobs)
        best = min(best, time.perf_counter() - start)
    return {
        "files": len(blobs),
        "html_mb": total / 1e6,
        "text_chars": chars,
        "seconds": best,
        "mb_per_s_per_core": total / 1e6 / best,
    }


def peak_memory(paths: list[Path], copies: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "html"
        src.mkdir()
        for c in range(copies):
            for p in paths:
                (src / f"{c}_{p.name}").symlink_to(p.resolve())
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(src), str(Path(tmp) / "out")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--html", type=Path, default=REAL if REAL.is_dir() else FIXTURES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = iter_filing_paths(args.html)
    result = {
        "input": str(args.html),
        "clean": clean_throughput(paths, args.repeat),
        "memory_1x": peak_memory(paths, 1),
        "memory_4x": peak_memory(paths, 4),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
