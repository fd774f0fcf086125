"""The whole pipeline in pure Python: ``stages.MLM.dapt`` -> ``stages.MLM.tapt`` -> ``stages.FineTune.sec_cybert``.

What it shows: the Python API of the tutorial ("The Python API"). The named constructors carry
the reference procedure's stage settings (DAPT: concat-and-chunk, 30 % token masking; TAPT:
one paragraph per block, 30 % whole-word masking; fine-tune: the 7-class category head and the
4-level CORAL specificity head); keyword arguments override them, here to fit a CPU. It runs on
the synthetic demo corpus with a tiny random-init ModernBERT, then fine-tunes base and +DAPT
too and prints the ablation table.

Run (offline, CPU, no downloads):

    python examples/pipeline_in_python.py --out runs/examples/python          # 30 steps per stage
    python examples/pipeline_in_python.py --fast --out /tmp/python-fast       # a few steps per stage

On real data and a GPU, pass ``--encoder answerdotai/ModernBERT-large`` (a download) and point the
sources at your corpus (``corpus.JsonlShards("data/dapt-corpus")``, ``corpus.Paragraphs(...)``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sec_cybert import Pipeline, corpus, stages
from sec_cybert.core.log_setup import configure_logging
from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.stages import Training
from sec_cybert.testing.demo_data import unpack_demo_corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/python"), help="run directory")
    parser.add_argument("--fast", action="store_true", help="3 optimizer steps per stage (a smoke test)")
    parser.add_argument("--encoder", default="tiny-modernbert", help="registered encoder, local directory or hub id")
    parser.add_argument("--hardware", default="auto")
    args = parser.parse_args(argv)
    configure_logging()  # log lines on stderr, as the CLI writes them: stdout is for what this script prints
    out = args.out.resolve()

    data = unpack_demo_corpus(out / "data")  # synthetic filings, paragraphs and labels

    steps = 3 if args.fast else 30
    mlm_training = Training(
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=1e-3,
        logging_steps=10,
        save_steps=max(1, steps // 2),
    )
    finetune_training = Training(
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        max_steps=steps if args.fast else None,
        num_train_epochs=2,
        learning_rate=1e-3,
        save_strategy="epoch",
        save_total_limit=1,
    )
    # tiny-modernbert trains its tokenizer on the MLM corpora; these sizes keep it CPU-small.
    encoder_options = {"vocab_size": 2048, "max_position_embeddings": 512} if args.encoder == "tiny-modernbert" else {}

    pipe = Pipeline(
        encoder=args.encoder,
        encoder_options=encoder_options,
        hardware=args.hardware,
        stages=[
            stages.MLM.dapt(
                corpus.JsonlShards(data.dapt_dir, min_chars=2000),
                chunker=ConcatChunker(seq_len=256),
                max_tokens=150_000,
                training=mlm_training,
            ),
            stages.MLM.tapt(
                corpus.Paragraphs(data.paragraphs_file),
                chunker=ParagraphChunker(max_length=256),
                training=mlm_training,
            ),
            stages.FineTune.sec_cybert(
                data.train_file,
                eval_file=data.eval_file,
                holdout_file=data.holdout_file,
                max_length=256,
                pooling="mean",
                training=finetune_training,
            ),
        ],
    )
    result = pipe.run(out)  # DAPT -> TAPT -> fine-tune of +DAPT+TAPT; a re-run reuses finished stages
    print("variants:", [v.name for v in result.variants])  # ['base', '+DAPT', '+DAPT+TAPT']
    table = result.ablation()  # fine-tunes base and +DAPT too; writes ablation.{json,md,png}
    print(table.to_markdown())
    print(f"done: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
