"""Peak memory and time of DAPT data preparation at 1x and 4x (and more) a real-filings corpus.

    python benchmarks/corpus/bench_prepare.py [--html DIR] [--scales 1,4] [--vocab 16000]

DIR defaults to /work/shared/data/filings (real 10-Ks); when that is absent the script says so
and falls back to the test fixtures, whose figures mean little. The filings are cleaned once
and written N times as JSONL shards, each copy with its own id, filing date and first line (so
exact deduplication keeps every copy: N x means N times the tokens). A byte-level BPE is trained
on the cleaned text once, outside the measurement.

Each measurement is a fresh interpreter running ``MLMStage.dapt(...).prepare_data`` (read,
deduplicate, tokenize, select, split, group at seq_len 8192) with ``SEC_CYBERT_CACHE`` pointing
at a directory of its own: *cold* with it empty, then *warm* with the entry the cold run left.
It reports the process's peak RSS (``getrusage`` ``ru_maxrss``), the peak of its anonymous
memory (``RssAnon``, sampled every 5 ms: the heap, without the pages of memory-mapped Arrow
files, which the kernel can drop and re-read at will) and the RSS before ``prepare_data`` ran
(imports and the tokenizer), so the growth is the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL = Path("/work/shared/data/filings")
FIXTURES = ROOT / "tests" / "corpus" / "fixtures"

MEASURE = """
import json, resource, sys, threading, time

def anon_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0

peak = {"anon": 0}
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak["anon"] = max(peak["anon"], anon_kib())
        time.sleep(0.005)

from transformers import AutoTokenizer
from sec_cybert.corpus.sources import JsonlShards
from sec_cybert.stages.mlm import MLMStage

tokenizer = AutoTokenizer.from_pretrained(sys.argv[2])
stage = MLMStage.dapt(corpus=JsonlShards(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
thread = threading.Thread(target=sample, daemon=True)
thread.start()
start = time.perf_counter()
train, validation, report = stage.prepare_data(tokenizer, seed=0)
seconds = time.perf_counter() - start
stop.set()
thread.join()
print(json.dumps({
    "seconds": round(seconds, 2),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "peak_anon_mib": round(peak["anon"] / 1024, 1),
    "rss_before_mib": round(before / 1024, 1),
    "documents": report["selection"]["documents_kept"],
    "tokens": report["selection"]["tokens_kept"],
    "train_blocks": report["train_blocks"],
    "validation_blocks": report["validation_blocks"],
    "tokenization": report.get("tokenization"),
}))
"""


def cleaned_filings(html: Path) -> list[tuple[str, str, str]]:
    """(name, filing date, cleaned text) of each filing in ``html``."""
    from sec_cybert.corpus.edgar_source import iter_filing_paths
    from sec_cybert.corpus.html_clean import clean_html

    filings = []
    for path in iter_filing_paths(html):
        # The shared filings are named TICKER-10-K-YYYY-MM-DD (the period end); fixtures are not.
        date = path.stem[-10:] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", path.stem[-10:]) else "2024-12-31"
        filings.append((path.stem, date, clean_html(path.read_bytes()).text))
    return filings


def write_corpus(filings: list[tuple[str, str, str]], copies: int, directory: Path) -> Path:
    """``copies`` of every filing as JSONL shards (one shard per copy), each copy distinct."""
    directory.mkdir(parents=True)
    for copy in range(copies):
        with (directory / f"shard-{copy:05d}.jsonl").open("w", encoding="utf-8") as handle:
            for name, date, text in filings:
                year = int(date[:4]) - copy  # older copies: newest-first order stays meaningful
                record = {
                    "id": f"{name}-copy{copy}",
                    "text": f"Copy {copy} of {name}.\n{text}",
                    "metadata": {"filing_date": f"{year:04d}{date[4:]}"},
                }
                handle.write(json.dumps(record) + "\n")
    return directory


def train_tokenizer(texts: list[str], vocab: int, directory: Path) -> Path:
    from sec_cybert.core.encoders import train_bpe_tokenizer

    train_bpe_tokenizer(texts, vocab_size=vocab).save_pretrained(str(directory))
    return directory


def measure(corpus: Path, tokenizer: Path, cache: Path) -> dict:
    env = {**os.environ, "SEC_CYBERT_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(corpus), str(tokenizer)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--html", type=Path, default=None)
    parser.add_argument("--scales", default="1,4", help="comma-separated copies of the filings")
    parser.add_argument("--vocab", type=int, default=16000)
    args = parser.parse_args()
    html = args.html
    if html is None:
        if REAL.is_dir():
            html = REAL
        else:
            print(f"{REAL} is absent: measuring the test fixtures instead, whose figures mean little")
            html = FIXTURES
    filings = cleaned_filings(html)
    results: dict = {
        "input": str(html),
        "filings": len(filings),
        "chars": sum(len(text) for _, _, text in filings),
    }
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        root = Path(tmp)
        tokenizer = train_tokenizer([text for _, _, text in filings], args.vocab, root / "tokenizer")
        for scale in (int(s) for s in args.scales.split(",")):
            corpus = write_corpus(filings, scale, root / f"corpus-{scale}x")
            cache = root / f"cache-{scale}x"
            results[f"{scale}x"] = {
                "cold": measure(corpus, tokenizer, cache),
                "warm": measure(corpus, tokenizer, cache),
            }
            print(json.dumps({f"{scale}x": results[f"{scale}x"]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
