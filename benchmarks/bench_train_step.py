"""MLM training throughput of a ModernBERT through our data path (collator + HF Trainer step).

    python benchmarks/bench_train_step.py --size tiny  --seq-len 512  --batch 8    # CPU
    python benchmarks/bench_train_step.py --size large --seq-len 8192 --batch 4 --bf16 --attn sdpa   # GPU

`large` is ModernBERT-large's shape (28 layers, 1024 hidden) with random weights: no download.
Reports optimizer steps/s, tokens/s and peak GPU memory; figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from sec_cybert.datapath.masking import TokenMasker

SIZES = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128},
    "base": {"hidden_size": 768, "num_hidden_layers": 22, "num_attention_heads": 12, "intermediate_size": 1152},
    "large": {"hidden_size": 1024, "num_hidden_layers": 28, "num_attention_heads": 16, "intermediate_size": 2624},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--sparse", action="store_true", help="ModernBERT sparse_prediction: decode masked tokens only")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vocab = 50_368
    config = ModernBertConfig(
        vocab_size=vocab, max_position_embeddings=8192, sparse_prediction=args.sparse, **SIZES[args.size]
    )
    config._attn_implementation = args.attn
    model = ModernBertForMaskedLM(config).to(device)
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=1e-5, fused=device == "cuda")
    masker = TokenMasker(probability=0.30)
    ids = torch.randint(10, vocab, (args.batch, args.seq_len))
    special = torch.zeros_like(ids, dtype=torch.bool)

    def step() -> None:
        inputs, labels = masker.mask(ids, special, mask_token_id=4, vocab_size=vocab)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=args.bf16):
            loss = step_model(input_ids=inputs.to(device), labels=labels.to(device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    tokens = args.batch * args.seq_len
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB peak" if device == "cuda" else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.size} seq {args.seq_len} batch {args.batch} bf16={args.bf16} attn={args.attn} compile={args.compile} "
        f"sparse={args.sparse}: "
          f"{seconds:.3f} s/step, {tokens / seconds:,.0f} tokens/s, {peak} ({name})")


if __name__ == "__main__":
    main()
