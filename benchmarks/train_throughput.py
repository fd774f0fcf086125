"""TAPT training throughput, ours beside the reference setup, through the real HF Trainer path.

    python benchmarks/train_throughput.py                        # tiny model, CPU: reference vs ours
    python benchmarks/train_throughput.py --repeats 3 --json out.json
    python benchmarks/train_throughput.py --journey              # the "Optimization Journey" matrix
    python benchmarks/train_throughput.py --size large --seq-len 512 --batch 32 --bf16 --attn flash_attention_2 --compile   # GPU
    python benchmarks/train_throughput.py --size large --seq-len 8192 --batch 256 --reference-batch 32 --bf16 --attn flash_attention_2 --checkpointing --compile

Both setups train the same paragraphs (synthetic, lognormal token lengths of mean ~127 and P99
~386 like Item 1C's, from a byte-level BPE trained on the fly; or ``--source demo``: the demo
corpus's TAPT paragraphs) on the same random-init ModernBERT shape (vocabulary 50,368, as
ModernBERT's), in the same process, alternately:

* **reference** -- the reference procedure's TAPT: a plain ``transformers.Trainer``, transformers'
  stock ``DataCollatorForLanguageModeling(whole_word_mask=True, mlm_probability=0.3)`` (word
  boundaries from ``offset_mapping``; the only glue is padding ``offset_mapping`` to the batch,
  which the stock collator cannot do in transformers 5), the dense MLM head, one paragraph per
  row (truncated at 512, its TAPT setting, whatever ``--seq-len`` is) padded to the longest of a
  batch of ``--batch`` (or ``--reference-batch``).
* **ours** -- ``MLMStage``'s path: :func:`sec_cybert.stages.trainer.run_trainer` (our
  ``CountingTrainer``, event callback, numerical guard), ``MaskingCollator`` +
  ``WholeWordMasker(0.3)``, ``sparse_prediction``, and packed rows (``PackingChunker``: whole
  paragraphs in rows of ``--seq-len``, attention stopped at each paragraph) when
  ``sec_cybert.datapath.packing`` exists, else one paragraph per row with length-grouped batches.
  Packed, a batch holds ``--batch`` x mean length / ``--seq-len`` rows, so a step covers about
  as many paragraphs as the reference's.

Each run takes ``--warmup`` optimizer steps, then times ``--steps`` (on a GPU synchronised at
both ends of the window). Token counts come from the batches the model trained on (collated in
the main process: ``dataloader_num_workers=0`` in both setups). Reported per run: s/step,
tokens/s (every slot, padding included), real tokens/s, padding efficiency, model TFLOP/s and
MFU (:mod:`sec_cybert.planning.flops`: padding and recomputation not counted; MFU only where the card's
peak is known), peak memory (GPU: allocated and reserved; CPU: the process's peak RSS over the
run, reset before it via ``/proc/self/clear_refs``). Figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import structlog
import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM, TrainerCallback

from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.planning.flops import EncoderShape, device_peak_flops
from sec_cybert.stages.throughput import batch_counts

# The shapes of benchmarks/bench_train_step.py (ModernBERT-base and -large, and a tiny one).
SIZES = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128},
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 22,
        "num_attention_heads": 12,
        "intermediate_size": 1152,
    },
    "large": {
        "hidden_size": 1024,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "intermediate_size": 2624,
    },
}
VOCAB = 50_368
MLM_PROBABILITY = 0.30
# Lognormal fitted to Item 1C paragraphs (DAPT-PROCEDURE.md: mean 127 tokens, P99 386):
# mean = exp(mu + sigma^2 / 2) and P99 = exp(mu + 2.326 sigma) give these.
LENGTH_MU, LENGTH_SIGMA = 4.698, 0.541
HAS_PACKING = importlib.util.find_spec("sec_cybert.datapath.packing") is not None
#: The reference TAPT's truncation; its rows stay at this whatever --seq-len packs ours to.
REFERENCE_MAX_LENGTH = 512


def reference_of(base: Setting, batch: int | None) -> Setting:
    """The reference setup for a run of ours: its TAPT truncation, its batch, a dense head."""
    return replace(
        base,
        setup="reference",
        sparse=False,
        seq_len=min(base.seq_len, REFERENCE_MAX_LENGTH),
        batch=batch or base.batch,
    )


@dataclass(frozen=True)
class Setting:
    setup: str  # "reference" or "ours"
    size: str = "tiny"
    seq_len: int = 512
    batch: int = 32  # paragraphs per step (rows of one paragraph; packed rows are fewer)
    attn: str = "sdpa"
    bf16: bool = False
    compile: bool = False
    checkpointing: bool = False
    packing: bool = True  # ours only: packed rows (else length-grouped when `grouped`)
    grouped: bool = True  # ours without packing: length-grouped batches
    sparse: bool = True  # ours only; the reference is always dense
    device: str = "cpu"

    def label(self) -> str:
        if self.setup == "reference":
            layout, head = "1 paragraph/row, padded", "dense"
        else:
            layout = (
                "packed"
                if self.packing
                else ("1/row, length-grouped" if self.grouped else "1 paragraph/row, padded")
            )
            head = "sparse" if self.sparse else "dense"
        flags = [self.attn] + [
            f
            for f, on in (("bf16", self.bf16), ("compile", self.compile), ("ckpt", self.checkpointing))
            if on
        ]
        return f"{self.setup}: {layout}, {head} head, {'+'.join(flags)}"


# --------------------------------------------------------------------------------------------
# Paragraphs


def _words(rng: np.random.Generator, count: int) -> list[str]:
    syllables = [
        "cy",
        "ber",
        "se",
        "cu",
        "ri",
        "ty",
        "in",
        "ci",
        "dent",
        "ma",
        "te",
        "al",
        "ri",
        "sk",
        "ge",
        "ment",
        "pro",
        "gram",
        "board",
        "of",
        "fi",
        "cer",
        "re",
        "view",
        "thr",
        "eat",
        "ven",
        "dor",
        "mon",
        "it",
    ]
    words = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables, size=int(rng.integers(1, 5)))))
    return sorted(words)


def synthetic_texts(n: int, seed: int) -> tuple[list[str], Any]:
    """``n`` paragraphs whose token counts follow the Item 1C lognormal, and the BPE tokenizer
    trained on them. Words are drawn Zipf-like from pseudo-words of 1-4 syllables, so many
    words are several tokens (whole-word masking has work to do)."""
    rng = np.random.default_rng(seed)
    vocabulary = _words(rng, 6000)
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()

    def sentence_words(k: int) -> list[str]:
        return list(rng.choice(vocabulary, size=k, p=weights))

    tokenizer = train_bpe_tokenizer((" ".join(sentence_words(60)) for _ in range(3000)), vocab_size=8192)
    cost = {w: len(tokenizer.tokenize(" " + w)) for w in vocabulary}
    texts = []
    for target in np.exp(rng.normal(LENGTH_MU, LENGTH_SIGMA, size=n)):
        words, tokens = [], 2  # [CLS] and [SEP]
        while tokens < max(8, int(target)):
            word = vocabulary[int(rng.choice(len(vocabulary), p=weights))]
            words.append(word)
            tokens += cost[word]
        texts.append(" ".join(words) + ".")
    return texts, tokenizer


def demo_texts(n: int, seed: int) -> tuple[list[str], Any]:
    from sec_cybert.testing.demo_corpus import DemoSize, write_demo_corpus

    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_demo_corpus(Path(tmp), seed=seed, size=DemoSize(tapt_paragraphs=n))
        texts = [json.loads(line)["text"] for line in corpus.paragraphs_file.read_text().splitlines()]
    return texts, train_bpe_tokenizer(texts, vocab_size=8192)


# --------------------------------------------------------------------------------------------
# Data of each setup


def reference_rows(texts: Sequence[str], tokenizer: Any, seq_len: int) -> Any:
    import datasets

    encoded = tokenizer(list(texts), truncation=True, max_length=seq_len, return_offsets_mapping=True)
    return datasets.Dataset.from_dict(
        {k: encoded[k] for k in ("input_ids", "attention_mask", "offset_mapping")}
    )


class ReferenceCollator:
    """The stock collator, with ``offset_mapping`` padded to the batch first (transformers 5's
    ``tokenizer.pad`` leaves it ragged; the reference's "collator handles dynamic padding")."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers import DataCollatorForLanguageModeling

        self.stock = DataCollatorForLanguageModeling(
            tokenizer, mlm_probability=MLM_PROBABILITY, whole_word_mask=True
        )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(f["input_ids"]) for f in features)
        padded = [
            {**f, "offset_mapping": list(f["offset_mapping"]) + [[0, 0]] * (width - len(f["offset_mapping"]))}
            for f in features
        ]
        return self.stock(padded)


def ours_rows(texts: Sequence[str], tokenizer: Any, setting: Setting) -> Any:
    import datasets

    from sec_cybert.datapath.chunking import ParagraphChunker

    if setting.packing:
        from sec_cybert.datapath.packing import PackingChunker

        chunker: Any = PackingChunker(max_length=setting.seq_len)
    else:
        chunker = ParagraphChunker(max_length=setting.seq_len)
    tokenized = chunker.tokenize(datasets.Dataset.from_dict({"text": list(texts)}), tokenizer)
    rows = chunker.group(tokenized)
    return rows.add_column("row", list(range(len(rows))))  # as the MLM stage does: seeded masks per row


class Recorder:
    """Wraps a collator; keeps every batch it returns, in order (batch k trains step k), and
    otherwise passes attributes through (the guard reads ``last_rows``, the epoch callback
    sets ``epoch`` on the collator itself)."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator
        self.batches: list[dict[str, Any]] = []

    def __call__(self, features: Any) -> dict[str, Any]:
        batch = self.collator(features)
        self.batches.append(batch)
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collator, name)


class Clock(TrainerCallback):
    """Times the optimizer steps after ``warmup``, synchronising a GPU at both ends only."""

    def __init__(self, warmup: int, total: int, cuda: bool) -> None:
        self.warmup, self.total, self.cuda = warmup, total, cuda
        self.start = self.end = None
        self.cpu_start = self.cpu_end = 0.0

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = self._now()
            self.cpu_start = time.process_time()
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
        elif state.global_step == self.total:
            self.end = self._now()
            self.cpu_end = time.process_time()


# --------------------------------------------------------------------------------------------
# One run


def make_model(setting: Setting, tokenizer: Any, seed: int) -> Any:
    config = ModernBertConfig(
        vocab_size=VOCAB,
        max_position_embeddings=max(8192, setting.seq_len),
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **SIZES[setting.size],
    )
    config._attn_implementation = setting.attn
    torch.manual_seed(seed)
    model = ModernBertForMaskedLM(config)
    model.sparse_prediction = setting.setup == "ours" and setting.sparse
    return model


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_peak_gib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _reference_trainer(
    setting: Setting, model: Any, rows: Any, collator: Any, out: Path, steps: int, clock: Clock, batch: int
) -> Any:
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    cuda = setting.device == "cuda"
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=5e-5,
        weight_decay=1e-5,
        warmup_steps=0.05,
        bf16=setting.bf16,
        tf32=True if cuda else None,
        torch_compile=setting.compile,
        activation_checkpointing=setting.checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if setting.checkpointing else None,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        use_cpu=not cuda,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,  # the collator needs offset_mapping
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)  # its end-of-training dict would break the table
    trainer.train()
    return None


def _ours_trainer(
    setting: Setting, model: Any, rows: Any, collator: Any, out: Path, steps: int, clock: Clock, batch: int
) -> Any:
    from sec_cybert.core.context import StageContext
    from sec_cybert.core.hardware import cpu_profile, cuda_profile
    from sec_cybert.stages.callbacks import EpochToCollator
    from sec_cybert.stages.trainer import checkpoint_dir, run_trainer
    from sec_cybert.stages.training import Training

    profile = cuda_profile() if setting.device == "cuda" else cpu_profile()
    training = Training(
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=5e-5,
        weight_decay=1e-5,
        gradient_checkpointing=setting.checkpointing,
        bf16=setting.bf16,
        torch_compile=setting.compile,
        attn_implementation=setting.attn,
        optim="adamw_torch_fused" if setting.device == "cuda" else "adamw_torch",
        logging_steps=steps,
        save_strategy="no",
        dataloader_num_workers=0,
        group_by_length=not setting.packing and setting.grouped,
    )
    context = StageContext(
        run_dir=out, init_from="", hardware=profile, seed=0, stage_name="bench", output_dir=out / "bench"
    )
    context.output_dir.mkdir(parents=True, exist_ok=True)
    runtime = training.runtime(profile)
    collator.collator.pad_to_multiple_of = training.padding_multiple(runtime)
    args = training.trainer_arguments(checkpoint_dir(context), runtime, seed=0, has_eval=False)
    run_trainer(
        context,
        training=training,
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=collator,
        perplexity=True,
        callbacks=[EpochToCollator(collator.collator), clock],
    )
    events = [
        json.loads(line) for line in (context.output_dir / "training-log.jsonl").read_text().splitlines()
    ]
    return [e for e in events if "real_tokens_per_second" in e]


def rows_per_step(setting: Setting, paragraph_mean: float) -> int:
    """``batch`` paragraphs, or as many packed rows as hold about that many."""
    if setting.setup == "ours" and setting.packing:
        return max(1, round(setting.batch * paragraph_mean / setting.seq_len))
    return setting.batch


def run(
    setting: Setting, texts: Sequence[str], tokenizer: Any, *, warmup: int, steps: int, data: dict
) -> dict[str, Any]:
    """Train ``warmup + steps`` steps of ``setting``; the figures of the last ``steps``.
    ``data`` caches each setup's rows across runs (and the mean paragraph length)."""
    from sec_cybert.datapath.collator import MaskingCollator
    from sec_cybert.datapath.masking import WholeWordMasker

    gc.collect()
    cuda = setting.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
    model = make_model(setting, tokenizer, seed=0)
    reference = ("reference", setting.seq_len)
    if reference not in data:
        data[reference] = reference_rows(texts, tokenizer, setting.seq_len)
        data["mean", setting.seq_len] = float(np.mean([len(ids) for ids in data[reference]["input_ids"]]))
    key = reference if setting.setup == "reference" else ("ours", setting.packing, setting.seq_len)
    if key not in data:
        data[key] = ours_rows(texts, tokenizer, setting)
    rows = data[key]
    batch = rows_per_step(setting, data["mean", setting.seq_len])
    if setting.setup == "reference":
        collator = Recorder(ReferenceCollator(tokenizer))
    else:
        attention = None
        if setting.packing:
            from sec_cybert.datapath.document_attention import DocumentAttention

            attention = DocumentAttention.from_config(model.config)
        collator = Recorder(
            MaskingCollator(
                tokenizer=tokenizer,
                masker=WholeWordMasker(probability=MLM_PROBABILITY),
                seed=0,
                attention=attention,
            )
        )
    total = warmup + steps
    clock = Clock(warmup, total, cuda)
    rss_reset = _reset_rss_peak() if not cuda else False
    with tempfile.TemporaryDirectory() as tmp:
        train = _reference_trainer if setting.setup == "reference" else _ours_trainer
        events = train(setting, model, rows, collator, Path(tmp), total, clock, batch)
    seconds = clock.end - clock.start
    timed = collator.batches[warmup:total]
    shape = EncoderShape.from_config(model.config)
    head = "sparse" if model.sparse_prediction else "dense"
    counted = [batch_counts(b, pad_token_id=tokenizer.pad_token_id, shape=shape, head=head) for b in timed]
    slots, real, flops = (sum(c[i] for c in counted) for i in range(3))
    peak = device_peak_flops() if cuda else None
    result = {
        **asdict(setting),
        "label": setting.label(),
        "rows_per_step": batch,
        "steps_timed": steps,
        "s_per_step": seconds / steps,
        # CPU seconds of this process (all its threads): less sensitive than the wall clock to
        # other jobs on a shared machine, though not to their use of caches and memory bandwidth.
        "cpu_s_per_step": (clock.cpu_end - clock.cpu_start) / steps,
        "tokens_per_second": slots / seconds,
        "real_tokens_per_second": real / seconds,
        "padding_efficiency": real / slots,
        "model_tflops": flops / seconds / 1e12,
        "mfu": flops / seconds / peak if peak else None,
    }
    if cuda:
        result["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    else:
        result["peak_rss_gib"] = _rss_peak_gib() if rss_reset else None
    if events:
        result["event_real_tokens_per_second"] = events[-1]["real_tokens_per_second"]
    del model, collator
    return result


# --------------------------------------------------------------------------------------------
# Output


def _memory(r: dict[str, Any]) -> str:
    if "peak_allocated_gib" in r:
        return f"{r['peak_allocated_gib']:.1f} / {r['peak_reserved_gib']:.1f} GiB"
    return f"{r['peak_rss_gib']:.2f} GiB RSS" if r.get("peak_rss_gib") else "n/a"


HEADER = "| setting | rows/step | s/step | CPU-s/step | tokens/s | real tokens/s | padding eff. | model TFLOP/s | MFU | peak memory |"


def row(r: dict[str, Any], extra: str = "") -> str:
    mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a"
    return (
        f"| {r['label']}{extra} | {r['rows_per_step']} | {r['s_per_step']:.3f} | {r['cpu_s_per_step']:.2f} | "
        f"{r['tokens_per_second']:,.0f} | "
        f"{r['real_tokens_per_second']:,.0f} | {r['padding_efficiency']:.3f} | {r['model_tflops']:.4f} | {mfu} | {_memory(r)} |"
    )


def _machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads, torch {torch.__version__}"


def _describe(texts: Sequence[str], tokenizer: Any, seq_len: int) -> str:
    lengths = np.array(
        [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=seq_len)["input_ids"]]
    )
    return f"{len(lengths)} paragraphs, tokens mean {lengths.mean():.0f}, median {np.median(lengths):.0f}, P99 {np.percentile(lengths, 99):.0f}, max {lengths.max()}"


def side_by_side(
    base: Setting, texts: Sequence[str], tokenizer: Any, args: argparse.Namespace
) -> list[dict[str, Any]]:
    reference = reference_of(base, args.reference_batch)
    ours = replace(base, setup="ours")
    data: dict = {}
    results = []
    for repeat in range(args.repeats):
        for setting in (reference, ours):
            r = run(setting, texts, tokenizer, warmup=args.warmup, steps=args.steps, data=data)
            r["repeat"] = repeat
            results.append(r)
            print(row(r, f" (run {repeat + 1})"), flush=True)
    ref = [r["real_tokens_per_second"] for r in results if r["setup"] == "reference"]
    our = [r["real_tokens_per_second"] for r in results if r["setup"] == "ours"]
    pairs = [o / f for f, o in zip(ref, our, strict=True)]
    print()
    print(f"reference real tokens/s: best {max(ref):,.0f}, median {statistics.median(ref):,.0f}")
    print(f"ours      real tokens/s: best {max(our):,.0f}, median {statistics.median(our):,.0f}")
    print(
        f"ratio ours / reference (real tokens/s): best/best {max(our) / max(ref):.2f}x, median of paired runs {statistics.median(pairs):.2f}x ({', '.join(f'{p:.2f}' for p in pairs)})"
    )
    effs = [r["padding_efficiency"] for r in results if r["setup"] == "ours"]
    print(f"ours padding efficiency: {min(effs):.3f}-{max(effs):.3f}")
    return results


def _flags(values: str) -> list[bool]:
    return [v.strip().lower() in ("1", "on", "true", "yes") for v in values.split(",")]


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One setting's runs folded into one row: the median of each figure, the largest memory."""
    folded = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float) and key != "mfu" or key == "mfu" and value is not None:
            values = [r[key] for r in runs if r.get(key) is not None]
            folded[key] = (max if "gib" in key else statistics.median)(values)
    folded["runs"] = len(runs)
    return folded


def journey(
    base: Setting, texts: Sequence[str], tokenizer: Any, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """The reference setup, then every combination of the axes on our data path; ``--repeats``
    rounds, the order reversed every other round (so a slow spell on a shared machine does not
    always fall on the same settings), medians reported."""
    data: dict = {}
    combos = itertools.product(
        args.journey_attn.split(","),
        [int(b) for b in args.journey_batch.split(",")],
        _flags(args.journey_compile),
        _flags(args.journey_checkpointing),
        _flags(args.journey_packing),
        _flags(args.journey_sparse),
    )
    settings = [reference_of(base, args.reference_batch)]
    for attn, batch, compiled, ckpt, packing, sparse in combos:
        if packing and not HAS_PACKING:
            continue
        settings.append(
            replace(
                base,
                setup="ours",
                attn=attn,
                batch=batch,
                compile=compiled,
                checkpointing=ckpt,
                packing=packing,
                grouped=False,
                sparse=sparse,
            )
        )
    runs: dict[Setting, list[dict[str, Any]]] = {setting: [] for setting in settings}
    for repeat in range(args.repeats):
        for setting in settings if repeat % 2 == 0 else reversed(settings):
            r = run(setting, texts, tokenizer, warmup=args.warmup, steps=args.steps, data=data)
            r["repeat"] = repeat
            runs[setting].append(r)
            print(f"  round {repeat + 1}: {row(r)}", file=sys.stderr, flush=True)
    folded = [_median(runs[setting]) for setting in settings]
    reference = folded[0]["real_tokens_per_second"]
    print(HEADER.replace("| setting |", "| setting | vs reference |"))
    print("|---" * (HEADER.count("|")) + "|")
    for r in folded:
        r["vs_reference"] = r["real_tokens_per_second"] / reference
        print(row(r).replace(f"| {r['label']} |", f"| {r['label']} | {r['vs_reference']:.2f}x |", 1))
    return [r for setting in settings for r in runs[setting]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--seq-len", type=int, default=512, help="paragraph truncation and packed row length")
    parser.add_argument(
        "--batch", type=int, default=32, help="paragraphs per step (packed: about that many in rows)"
    )
    parser.add_argument(
        "--reference-batch", type=int, help="the reference's rows per step (default: --batch)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=1, help="run the reference/ours pair this many times")
    parser.add_argument("--attn", default="sdpa", choices=("sdpa", "eager", "flash_attention_2"))
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument(
        "--no-packing",
        dest="packing",
        action="store_false",
        help="ours: one paragraph per row, length-grouped",
    )
    parser.add_argument(
        "--packing",
        dest="packing",
        action="store_true",
        help="ours: packed rows (default when sec_cybert.datapath.packing exists)",
    )
    parser.add_argument("--dense", dest="sparse", action="store_false", help="ours: dense MLM head")
    parser.add_argument(
        "--sparse", dest="sparse", action="store_true", help="ours: sparse_prediction (default)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--source", choices=("synthetic", "demo"), default="synthetic")
    parser.add_argument("--paragraphs", type=int, default=2048)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument(
        "--journey",
        action="store_true",
        help="run the attention x batch x compile x checkpointing x packing x sparse matrix",
    )
    parser.add_argument(
        "--journey-attn",
        default=None,
        help="comma-separated (default: sdpa,eager on CPU; sdpa,flash_attention_2 on GPU)",
    )
    parser.add_argument("--journey-batch", default=None, help="default: 32 on CPU; 8,32 on GPU")
    parser.add_argument(
        "--journey-compile", default=None, help="e.g. off,on (default: off on CPU; off,on on GPU)"
    )
    parser.add_argument("--journey-checkpointing", default="off,on")
    parser.add_argument("--journey-packing", default="off,on")
    parser.add_argument("--journey-sparse", default="off,on")
    parser.set_defaults(packing=HAS_PACKING, sparse=True)
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error(
            "--warmup and --steps must be >= 1 (the clock starts at the end of the last warm-up step)"
        )
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    datasets.disable_progress_bars()
    # The stock collator says, rightly, that whole-word masking replaces every target by [MASK].
    warnings.filterwarnings("ignore", message="Random token replacement is not supported")
    logging.getLogger("transformers").setLevel(logging.ERROR)

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.packing and not HAS_PACKING:
        sys.exit("--packing: sec_cybert.datapath.packing is not there")
    gpu = device == "cuda"
    args.journey_attn = args.journey_attn or ("sdpa,flash_attention_2" if gpu else "sdpa,eager")
    args.journey_batch = args.journey_batch or ("8,32" if gpu else "32")
    args.journey_compile = args.journey_compile or ("off,on" if gpu else "off")

    texts, tokenizer = (synthetic_texts if args.source == "synthetic" else demo_texts)(
        args.paragraphs, seed=0
    )
    base = Setting(
        setup="ours",
        size=args.size,
        seq_len=args.seq_len,
        batch=args.batch,
        attn=args.attn,
        bf16=args.bf16,
        compile=args.compile,
        checkpointing=args.checkpointing,
        packing=args.packing,
        sparse=args.sparse,
        device=device,
    )
    print(f"machine: {_machine(device)}; model: {args.size} ModernBERT shape, vocabulary {VOCAB:,}")
    print(f"data: {args.source}, {_describe(texts, tokenizer, args.seq_len)}")
    print(
        f"ours: {'packed rows (sec_cybert.datapath.packing)' if args.packing else 'one paragraph per row, length-grouped (no packing)'}; "
        f"steps: {args.warmup} warm-up + {args.steps} timed, through the HF Trainer (run_trainer for ours)"
    )
    print()
    if args.journey:
        results = journey(base, texts, tokenizer, args)
    else:
        print(HEADER)
        print("|---" * (HEADER.count("|") - 1) + "|")
        results = side_by_side(base, texts, tokenizer, args)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": _machine(device), "results": results}, indent=2, default=str) + "\n"
        )


if __name__ == "__main__":
    main()
