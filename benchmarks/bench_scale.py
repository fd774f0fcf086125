"""Data preparation at a fraction of the reference's scale: time and peak memory of each step.

    python benchmarks/bench_scale.py --scale 0.01             # ~10.6 M tokens: minutes on 2 cores
    python benchmarks/bench_scale.py --scale 0.1 --json out.json
    python benchmarks/bench_scale.py --scale 0.001 --source generated   # no /work/shared needed

``--scale 1`` is the reference's DAPT corpus, 1.06 B tokens. The corpus is the sample filings in
``/work/shared/data/filings`` (real 10-K HTML) replicated until the cleaned text holds ``scale``
x 1.06 B tokens, each copy with its own file name (so its own id), filing date and first line
(so exact deduplication keeps every copy); without that directory (or with ``--source
generated``) it is generated HTML: lines of pseudo-words with a Zipf distribution, 10-K-like
line lengths and headings. The holdout the contamination check protects is the real Item 1C
paragraphs of ``/work/shared/data/item1c`` (whose companies' filings are in the sample, so the
check finds real overlaps), else generated paragraphs. Tokens are counted with a 16K byte-level
BPE trained on the sample (ModernBERT's own 50K tokenizer is a hub download): the token counts,
not the tokenizer, set the scale.

Each step runs in a process of its own, in this order, all with one ``SEC_CYBERT_CACHE``:

1. ``corpus build`` (HTML -> JSONL shards, 2 worker processes);
2. ``corpus stats`` (tokenize every document, the corpus table);
3. DAPT's ``prepare_data`` cold (empty tokenization cache), then warm (the entry the cold one left);
4. the contamination check (``Pipeline.contamination_check``: DAPT's corpus and the fine-tune
   files against the holdout) cold, then cached;
5. ``plan`` twice. The first finds the contamination check cached but tokenizes again: the
   check's exclusions change the documents, so the tokenization cache entry of step 3 (the
   whole corpus) is not the plan's. The second finds both cached: the second ``plan``, and the
   ``run`` after it.

The processes are forked from one that imported torch, transformers and sec_cybert once
(``sec_cybert.testing.preloaded``): each step starts as a fresh command does after its imports
(nothing of an earlier step in memory), without paying ~5 s of imports eight times. That import
is reported once, as ``preload_seconds``; a step's ``import_seconds`` is what it imported beyond.

Per step: wall seconds, CPU seconds, the tracemalloc peak (Python's allocations, numpy's
included; not Arrow's or the Rust tokenizer's), the peak of ``RssAnon`` sampled every 5 ms (the
whole heap, native included), and ``ru_maxrss`` (which also counts pages of memory-mapped Arrow
files: page cache), with its worker processes' peak for ``corpus build``. tracemalloc slows
allocation-heavy Python; ``--no-tracemalloc`` measures without it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

from sec_cybert.testing.preloaded import PreloadedPython

REFERENCE_TOKENS = 1_060_000_000
REFERENCE_BUDGET = 500_000_000  # DAPT's max_tokens: the newest 500 M of the 1.06 B
REAL_FILINGS = Path("/work/shared/data/filings")
REAL_ITEM1C = Path("/work/shared/data/item1c")
STEPS = (
    "build",
    "stats",
    "prepare-cold",
    "prepare-warm",
    "contamination-cold",
    "contamination-cached",
    "plan-first",
    "plan-second",
)


# --- the child: one step, measured -------------------------------------------------------------
def _anon_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def _pipeline(work: Path, max_tokens: int):
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import builtin_plugin_manager

    config = {
        "encoder": str(work / "encoder"),
        "hardware": "cpu",
        "stages": [
            {
                "kind": "mlm",
                "name": "dapt",
                "corpus": {"kind": "jsonl-shards", "path": str(work / "shards")},
                "chunker": {"kind": "concat", "seq_len": 8192},
                "masker": {"kind": "token", "probability": 0.3},
                "max_tokens": max_tokens,
                "training": {"gradient_checkpointing": True},
            },
            {
                "kind": "finetune",
                "name": "finetune",
                "train_file": str(work / "labels" / "train.jsonl"),
                "eval_file": str(work / "labels" / "eval.jsonl"),
                "holdout_file": str(work / "labels" / "holdout.jsonl"),
                "heads": [{"name": "category", "kind": "softmax", "labels": ["a", "b"]}],
            },
        ],
    }
    return load_run_config(config, plugin_manager=builtin_plugin_manager()).pipeline


def run_step(step: str, work: Path, max_tokens: int) -> dict:
    """Run ``step``; return what it counted (the caller measures)."""
    if step == "build":
        from sec_cybert.corpus.build import build_shards

        summary = build_shards(work / "html", work / "shards", min_chars=10_000, workers=2)
        return {"filings": summary.files, "kept": summary.kept, "chars": summary.chars_kept}
    if step == "stats":
        from sec_cybert.corpus.stats import corpus_stats, load_tokenizer

        stats = corpus_stats(work / "shards", load_tokenizer(str(work / "encoder")), seq_len=8192).as_dict()
        return {key: stats[key] for key in ("documents", "tokens") if key in stats} or {"table": str(stats)[:200]}
    if step.startswith("prepare"):
        from transformers import AutoTokenizer

        from sec_cybert.corpus.sources import JsonlShards
        from sec_cybert.stages.mlm import MLMStage

        stage = MLMStage.dapt(corpus=JsonlShards(work / "shards"), max_tokens=max_tokens)
        _, _, report = stage.prepare_data(AutoTokenizer.from_pretrained(work / "encoder"), seed=0)
        return {
            "tokens_kept": report["selection"]["tokens_kept"],
            "documents_kept": report["selection"]["documents_kept"],
            "train_blocks": report["train_blocks"],
            "tokenization": report["tokenization"]["cache"],
        }
    if step.startswith("contamination"):
        report = _pipeline(work, max_tokens).contamination_check()
        return {"overlaps": [line for line in report.summary_lines()], "excluded": report.as_dict()["excluded"]}
    if step.startswith("plan"):
        from sec_cybert.host.planner import plan_pipeline

        plan = plan_pipeline(_pipeline(work, max_tokens))
        return {"lines": len(plan.to_text().splitlines())}
    raise SystemExit(f"unknown step {step}")


def child(step: str, work: Path, max_tokens: int, trace: bool) -> None:
    import logging
    import resource
    import threading
    import tracemalloc

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    peak = {"anon": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["anon"] = max(peak["anon"], _anon_kib())
            time.sleep(0.005)

    # The libraries every step loads, before the clock: a step's figure is its own work (the
    # imports are reported apart; a command pays them once per process).
    imported = time.perf_counter()
    import datasets  # noqa: F401
    import transformers  # noqa: F401
    import transformers.models.modernbert.modeling_modernbert  # noqa: F401

    import sec_cybert.corpus.build  # noqa: F401
    import sec_cybert.corpus.stats  # noqa: F401
    import sec_cybert.host.pipeline  # noqa: F401
    import sec_cybert.host.planner  # noqa: F401
    import sec_cybert.stages.mlm  # noqa: F401
    from sec_cybert.testing import builtin_plugin_manager

    builtin_plugin_manager()  # loads every built-in plugin module
    imported = time.perf_counter() - imported
    before = _anon_kib()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    if trace:
        tracemalloc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    counts = run_step(step, work, max_tokens)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    stop.set()
    thread.join()
    mib = 1 / 1024
    print(
        "RESULT "
        + json.dumps(
            {
                "step": step,
                "pid": os.getpid(),
                "seconds": round(wall, 2),
                "cpu_seconds": round(cpu, 2),
                "import_seconds": round(imported, 2),
                "tracemalloc_peak_mib": None if traced is None else round(traced / 2**20, 1),
                "peak_anon_mib": round(peak["anon"] * mib, 1),
                "anon_before_mib": round(before * mib, 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * mib, 1),
                "workers_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * mib, 1),
                **counts,
            }
        )
    )


# --- the parent: make the corpus, run the steps ------------------------------------------------
def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def real_sample() -> list[tuple[str, bytes]] | None:
    if not REAL_FILINGS.is_dir():
        return None
    return [(p.stem, p.read_bytes()) for p in sorted(REAL_FILINGS.glob("*.htm"))] or None


def generated_sample(filings: int = 5, seed: int = 0) -> list[tuple[str, bytes]]:
    """HTML filings of pseudo-words: Zipf-distributed over 20K words, lines of 5-150 words (a
    tenth of them headings of 2-8), ~300K characters each, like a cleaned 10-K's text."""
    rng = random.Random(seed)
    syllables = ["ba", "co", "de", "fi", "gu", "ha", "ki", "lo", "ma", "ne", "po", "ra", "si", "tu", "ve", "xo", "ze"]
    words = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(40_000)})[:20_000]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    sample = []
    for index in range(filings):
        lines, size = [f"<p>ITEM 1. BUSINESS of generated company {index}</p>"], 0
        while size < 300_000:
            heading = rng.random() < 0.1
            count = rng.randint(2, 8) if heading else rng.randint(5, 150)
            text = " ".join(rng.choices(words, weights, k=count)).capitalize() + ("" if heading else ".")
            lines.append(f"<p>{text}</p>")
            size += len(text)
        html = "<html><head><title>10-K</title></head><body>" + "\n".join(lines) + "</body></html>"
        sample.append((f"GEN{index}-10-K-2024-12-31", html.encode()))
    return sample


def holdout_paragraphs(source: str, sample_texts: list[str]) -> list[str]:
    if source == "real" and REAL_ITEM1C.is_dir():
        paragraphs = []
        for path in sorted(REAL_ITEM1C.glob("*-item1c.txt")):
            paragraphs += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.split()) >= 8]
        return paragraphs
    # Generated: lines of the sample itself (so the check finds them in every copy) and new ones.
    rng = random.Random(1)
    lines = [line for text in sample_texts for line in text.splitlines() if len(line.split()) >= 20]
    return rng.sample(lines, min(40, len(lines))) + [f"A paragraph no filing holds, number {i}, " + " ".join(rng.sample(lines[i % len(lines)].split(), 15)) for i in range(340)]


def _write_shards(directory: Path, names: list[str], texts: list[str], copies: int) -> None:
    """The cleaned sample as ``corpus build`` would write it, ``copies`` times (ids, dates and
    first lines distinct), 1,000 documents a shard: the corpus without the build's hours."""
    directory.mkdir(parents=True)
    handle, written = None, 0
    for copy in range(copies):
        for index, (name, text) in enumerate(zip(names, texts, strict=True)):
            if written % 1000 == 0:
                if handle:
                    handle.close()
                handle = (directory / f"shard-{written // 1000:05d}.jsonl").open("w", encoding="utf-8")
            day = (copy * len(names) + index) % 3650
            record = {
                "id": f"{copy:010d}-{index:06d}",
                "text": f"Copy {copy} of {name}.\n{text}",
                "metadata": {"filing_date": f"{2024 - day // 365:04d}-{1 + day % 365 // 31 % 12:02d}-{1 + day % 28:02d}"},
            }
            handle.write(json.dumps(record) + "\n")
            written += 1
    if handle:
        handle.close()


def prepare(work: Path, scale: float, source: str, vocab: int, corpus: str = "html") -> dict:
    from sec_cybert.core.encoders import train_bpe_tokenizer
    from sec_cybert.corpus.edgar_source import SIDECAR_SUFFIX
    from sec_cybert.corpus.html_clean import clean_html

    sample = real_sample() if source == "real" else None
    if sample is None:
        if source == "real":
            print(f"{REAL_FILINGS} is absent: generating the sample instead")
        source, sample = "generated", generated_sample()
    texts = [clean_html(html).text for _, html in sample]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=vocab)
    tokenizer.save_pretrained(str(work / "encoder"))
    _tiny_encoder(work / "encoder", len(tokenizer))
    sample_tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    copies = max(1, math.ceil(scale * REFERENCE_TOKENS / sample_tokens))
    html_dir = work / "html"
    html_dir.mkdir(parents=True)
    html_bytes = 0
    if corpus == "jsonl":
        _write_shards(work / "shards", [name for name, _ in sample], texts, copies)
        copies_written = 0
    else:
        copies_written = copies
    for copy in range(copies_written):
        for index, (name, html) in enumerate(sample):
            stem = f"{name}-copy{copy:05d}"
            # Distinct first line, right after <body ...>, so no copy is an exact duplicate.
            marked = re.sub(rb"(<body[^>]*>)", rb"\1<p>Copy %d of %s.</p>" % (copy, name.encode()), html, count=1, flags=re.I)
            (html_dir / f"{stem}.htm").write_bytes(marked)
            day = (copy * len(sample) + index) % 3650
            year, rest = 2024 - day // 365, day % 365
            sidecar = {
                "filing_date": f"{year:04d}-{1 + rest // 31 % 12:02d}-{1 + rest % 28:02d}",
                "accession": f"{copy:010d}-{year % 100:02d}-{index:06d}",
                "form": "10-K",
            }
            (html_dir / f"{stem}.htm{SIDECAR_SUFFIX}").write_text(json.dumps(sidecar))
            html_bytes += len(marked)
    _labeled_files(work / "labels", holdout_paragraphs(source, texts))
    return {
        "source": source,
        "sample_filings": len(sample),
        "sample_tokens": sample_tokens,
        "copies": copies,
        "filings": copies * len(sample),
        "html_gb": round(html_bytes / 1e9, 2),
        "corpus": corpus,
        "target_tokens": round(scale * REFERENCE_TOKENS),
    }


def _tiny_encoder(directory: Path, vocab: int) -> None:
    """A random-init ModernBERT the pipeline can name as its encoder (plan reads its config)."""
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = ModernBertConfig(
        vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
        max_position_embeddings=8192, pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )
    ModernBertForMaskedLM(config).save_pretrained(directory)


def _labeled_files(directory: Path, holdout: list[str]) -> None:
    from sec_cybert.testing import labeled_paragraphs, write_jsonl

    directory.mkdir(parents=True)
    rows = labeled_paragraphs(4, seed=7)
    for row in rows:
        row["category"] = "a" if row["category"] < "M" else "b"
    half = len(rows) // 2
    write_jsonl(directory / "train.jsonl", rows[:half])
    write_jsonl(directory / "eval.jsonl", rows[half:])
    write_jsonl(directory / "holdout.jsonl", [{"id": f"h{i}", "text": t, "category": "a"} for i, t in enumerate(holdout)])


def measure(python: PreloadedPython, step: str, work: Path, max_tokens: int, trace: bool, timeout: int) -> dict:
    env = {
        **os.environ,
        "SEC_CYBERT_CACHE": str(work / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "true",
        "PYTHONHASHSEED": "0",
    }
    load = _load_average()
    command = [__file__, "--child", step, "--work", str(work), "--max-tokens", str(max_tokens)]
    done = python.run(command + ([] if trace else ["--no-tracemalloc"]), env=env, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"step": step, "error": (done.stderr or done.stdout)[-1500:], "load_before": load}
    return {**json.loads(lines[-1][len("RESULT ") :]), "load_before": load, "load_after": _load_average()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of the reference's 1.06 B tokens")
    parser.add_argument("--source", choices=("real", "generated"), default="real")
    parser.add_argument("--steps", default=None, help=f"comma-separated, of {','.join(STEPS)}")
    parser.add_argument(
        "--corpus",
        choices=("html", "jsonl"),
        default="html",
        help="html: HTML filings that the build step cleans; jsonl: the cleaned copies written as shards "
        "directly (no build step: at 10%% of the reference it is hours on 2 cores)",
    )
    parser.add_argument("--vocab", type=int, default=16_000)
    parser.add_argument(
        "--work", type=Path, help="working directory (default: a temporary one, removed after); one made before is reused"
    )
    parser.add_argument("--keep", action="store_true", help="keep --work's corpus and caches")
    parser.add_argument("--json", type=Path, help="write every result here too")
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per step")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--max-tokens", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work, args.max_tokens, args.trace)
        return
    if not 0 < args.scale <= 1:
        parser.error("--scale is a fraction of the reference corpus: 0 < scale <= 1")
    work = args.work or Path(tempfile.mkdtemp(prefix="sec-cybert-scale-"))
    max_tokens = max(1, round(args.scale * REFERENCE_BUDGET))
    started = time.perf_counter()
    steps = args.steps.split(",") if args.steps else [s for s in STEPS if not (args.corpus == "jsonl" and s == "build")]
    if (work / "setup.json").is_file():  # a --work directory made before: its corpus and caches
        setup = json.loads((work / "setup.json").read_text())
    else:
        setup = prepare(work, args.scale, args.source, args.vocab, args.corpus)
        setup["setup_seconds"] = round(time.perf_counter() - started, 1)
        (work / "setup.json").write_text(json.dumps(setup))
    python, preloading = PreloadedPython(), time.perf_counter()
    python.run(["-c", "pass"], timeout=args.timeout)  # starts the server: the one import of the libraries
    setup["preload_seconds"] = round(time.perf_counter() - preloading, 2)
    print(json.dumps({"setup": setup, "cores": os.cpu_count(), "load": _load_average()}), flush=True)
    results = []
    for step in steps:
        result = measure(python, step, work, max_tokens, args.trace, args.timeout)
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "setup": setup, "results": results}, indent=2) + "\n")
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
