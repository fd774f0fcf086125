"""TAPT alone: continue masked-language-model pretraining of an encoder on your own paragraphs.

What it shows: a one-stage pipeline, ``stages.MLM.tapt(corpus.Paragraphs(FILE))``, and its
output, a plain transformers checkpoint (``AutoModelForMaskedLM.from_pretrained`` loads it)
that you can fine-tune with ``examples/finetune_only.py --encoder OUT/tapt``.

The paragraphs file is JSONL, one paragraph per line: ``{"id": "...", "text": "..."}`` (``id``
optional; other keys are kept as metadata). Near-duplicate paragraphs are kept once, and 5 % of
the paragraphs are held out whole for the validation loss. Without ``--paragraphs`` the script
writes the synthetic demo corpus and uses its 600 Item 1C paragraphs.

Run (offline, CPU; ``tiny-modernbert`` is a random-init ModernBERT with a tokenizer trained on
the paragraphs, no downloads):

    python examples/tapt_only.py --out runs/examples/tapt                          # 40 steps
    python examples/tapt_only.py --paragraphs my-paragraphs.jsonl --out runs/my-tapt
    python examples/tapt_only.py --fast --out /tmp/tapt-fast                        # 3 steps

On a GPU, with the hub model (a download): ``--encoder answerdotai/ModernBERT-base --hardware auto``
and drop ``--steps`` to get the reference's 5 epochs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sec_cybert import Pipeline, corpus, stages
from sec_cybert.core.log_setup import configure_logging
from sec_cybert.datapath.chunking import ParagraphChunker
from sec_cybert.stages import Training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=Path, help="JSONL of paragraphs (default: the demo corpus's)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/tapt"), help="run directory")
    parser.add_argument("--encoder", default="tiny-modernbert", help="registered encoder, local directory or hub id")
    parser.add_argument("--hardware", default="auto")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps (0: the reference's 5 epochs)")
    parser.add_argument("--fast", action="store_true", help="3 optimizer steps (a smoke test)")
    args = parser.parse_args(argv)
    configure_logging()  # log lines on stderr, as the CLI writes them: stdout is for what this script prints
    out = args.out.resolve()

    paragraphs = args.paragraphs
    if paragraphs is None:
        from sec_cybert.testing.demo_data import unpack_demo_corpus

        paragraphs = unpack_demo_corpus(out / "data").paragraphs_file

    steps = 3 if args.fast else args.steps
    tapt = stages.MLM.tapt(
        corpus.Paragraphs(paragraphs),
        chunker=ParagraphChunker(max_length=256),  # the reference uses 512; 256 fits a CPU
        training=Training(
            per_device_train_batch_size=16,
            gradient_accumulation_steps=1,
            max_steps=steps or None,
            num_train_epochs=5,
            learning_rate=1e-3 if args.encoder == "tiny-modernbert" else 5e-5,
            logging_steps=10,
            save_strategy="steps",
            save_steps=max(1, (steps or 1000) // 2),
        ),
    )
    encoder_options = {"vocab_size": 2048, "max_position_embeddings": 512} if args.encoder == "tiny-modernbert" else {}
    pipe = Pipeline(encoder=args.encoder, encoder_options=encoder_options, hardware=args.hardware, stages=[tapt])
    result = pipe.run(out)

    variant = result.variants[-1]  # base, then +TAPT
    metrics = variant.mlm_result.metrics
    print(f"TAPT: {metrics['global_step']} steps, validation loss {metrics['eval_loss']:.4f} "
          f"(perplexity {metrics['eval_perplexity']:.1f})")

    # The output is an ordinary transformers checkpoint, tokenizer beside it.
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(variant.checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(variant.checkpoint)
    print(f"checkpoint: {variant.checkpoint} ({model.config.model_type}, vocabulary {len(tokenizer)})")
    print(f"next: python examples/finetune_only.py --encoder {variant.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
