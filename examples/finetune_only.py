"""Fine-tune alone: train the two Item 1C heads on labeled JSONL, from a base encoder.

What it shows: a one-stage pipeline, ``stages.FineTune.sec_cybert(TRAIN, eval_file=...,
holdout_file=...)``, its metrics, and inference with the saved classifier
(``MultiHeadClassifier.load``). No DAPT or TAPT: the encoder is used as it is.

The labeled files are JSONL, one paragraph per line:
``{"id": "...", "text": "...", "category": "Board Governance", "specificity": "Firm-Specific"}``
with ``category`` one of the 7 content categories and ``specificity`` one of the 4 levels
(``sec_cybert.core.taxonomy``). ``sec-cybert split labeled.jsonl --out DIR --by company`` makes the
three files from one, keeping copied paragraphs in one split. Without ``--train`` the script
writes the synthetic demo corpus and uses its labeled train/eval/holdout files.

Run (offline, CPU, no downloads):

    python examples/finetune_only.py --out runs/examples/finetune                 # 2 epochs
    python examples/finetune_only.py --train data/labels/train.jsonl --eval data/labels/eval.jsonl \\
        --holdout data/labels/holdout.jsonl --out runs/my-finetune
    python examples/finetune_only.py --encoder runs/examples/tapt/tapt --out runs/ft-tapt   # after tapt_only.py
    python examples/finetune_only.py --fast --out /tmp/finetune-fast              # 3 steps

``--encoder`` takes ``tiny-modernbert`` (default: random init, tokenizer trained on the training
texts), a local checkpoint directory (a TAPT output: the run then names its variant ``+TAPT``),
or a hub id such as ``answerdotai/ModernBERT-base`` (a download).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sec_cybert import Pipeline, stages
from sec_cybert.core.log_setup import configure_logging
from sec_cybert.stages import Training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, help="labeled JSONL to train on (default: the demo corpus's)")
    parser.add_argument("--eval", type=Path, help="labeled JSONL for checkpoint selection")
    parser.add_argument("--holdout", type=Path, help="labeled JSONL for the final metrics")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/finetune"), help="run directory")
    parser.add_argument("--encoder", default="tiny-modernbert", help="registered encoder, local directory or hub id")
    parser.add_argument("--hardware", default="auto")
    parser.add_argument("--fast", action="store_true", help="3 optimizer steps (a smoke test)")
    args = parser.parse_args(argv)
    configure_logging()  # log lines on stderr, as the CLI writes them: stdout is for what this script prints
    out = args.out.resolve()

    train, eval_file, holdout = args.train, args.eval, args.holdout
    if train is None:
        from sec_cybert.testing.demo_data import unpack_demo_corpus

        data = unpack_demo_corpus(out / "data")
        train, eval_file, holdout = data.train_file, data.eval_file, data.holdout_file

    finetune = stages.FineTune.sec_cybert(
        train,
        eval_file=eval_file,
        holdout_file=holdout,
        max_length=256,
        pooling="mean",
        metric_for_best_model="category_macro_f1" if eval_file else None,
        training=Training(
            per_device_train_batch_size=16,
            gradient_accumulation_steps=1,
            num_train_epochs=2,
            max_steps=3 if args.fast else None,
            learning_rate=1e-3 if args.encoder == "tiny-modernbert" else 5e-5,
            weight_decay=0.01,
            warmup_ratio=0.1,
            logging_steps=20,
            save_strategy="epoch",
            save_total_limit=1,
        ),
    )
    encoder_options = {"vocab_size": 2048, "max_position_embeddings": 512} if args.encoder == "tiny-modernbert" else {}
    pipe = Pipeline(encoder=args.encoder, encoder_options=encoder_options, hardware=args.hardware, stages=[finetune])
    result = pipe.run(out)

    (finished,) = result.finetuned.values()
    shown = ("category_macro_f1", "specificity_macro_f1", "specificity_qwk")
    print(f"fine-tuned {result.variants[-1].name} in {finished.output_dir}:",
          ", ".join(f"{k}={finished.metrics[k]:.4f}" for k in shown if k in finished.metrics))

    # The saved classifier: the encoder (AutoModel-loadable) + heads.json + heads.safetensors.
    import torch
    from transformers import AutoTokenizer

    from sec_cybert.stages import MultiHeadClassifier

    model = MultiHeadClassifier.load(finished.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(finished.output_dir)
    text = "The Audit Committee oversees our cybersecurity risk and receives quarterly reports from the CISO."
    batch = tokenizer([text], return_tensors="pt", truncation=True, max_length=256)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    predicted = model.predict(logits)
    for head in model.head_specs:
        print(f"{head.name} -> {head.labels[int(predicted[head.name][0])]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
