"""Tokenization throughput of ``corpus stats`` against the raw ``tokenizers`` batch encoder.

    python benchmarks/corpus/bench_tokenize.py [--html DIR] [--vocab 16000]

Cleans the filings in DIR, trains a byte-level BPE of ``--vocab`` on them (no download), then
times on the same texts: the raw ``tokenizers.Tokenizer.encode_batch``, the path ``stats``
uses (``token_counts``: the fast tokenizer's Rust backend), and a plain
``PreTrainedTokenizerFast.__call__`` for comparison.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from sec_cybert.corpus.edgar_source import iter_filing_paths
from sec_cybert.corpus.html_clean import clean_html
from sec_cybert.corpus.stats import token_counts

ROOT = Path(__file__).resolve().parents[2]
REAL = Path("/work/shared/data/filings")


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--html", type=Path, default=REAL if REAL.is_dir() else ROOT / "tests/corpus/fixtures"
    )
    parser.add_argument("--vocab", type=int, default=16000)
    args = parser.parse_args()
    texts = [clean_html(p.read_bytes()).text for p in iter_filing_paths(args.html)]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=args.vocab, special_tokens=["[UNK]"]))
    with tempfile.TemporaryDirectory() as tmp:
        PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]").save_pretrained(tmp)
        hf = AutoTokenizer.from_pretrained(tmp)
    batch = texts  # a batch of whole filings
    n_tokens = sum(len(e.ids) for e in raw.encode_batch(batch, add_special_tokens=False))
    chars = sum(len(t) for t in texts)
    results = {
        "raw tokenizers encode_batch": best_of(lambda: raw.encode_batch(batch, add_special_tokens=False)),
        "stats token_counts": best_of(lambda: token_counts(batch, hf)),
        "transformers __call__": best_of(lambda: hf(batch, add_special_tokens=False)),
    }
    print(
        json.dumps(
            {
                "documents": len(texts),
                "chars": chars,
                "tokens": n_tokens,
                "chars_per_token": chars / n_tokens,
                "tokens_per_s": {k: n_tokens / v for k, v in results.items()},
                "seconds": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
