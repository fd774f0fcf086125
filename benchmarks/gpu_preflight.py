"""The memory preflight against a real GPU: ModernBERT-large's shape (random weights, no
download), one training step per case, the estimate beside what CUDA measured.

    python benchmarks/gpu_preflight.py                    # measured, then capped at a 24 GB card
    python benchmarks/gpu_preflight.py --emulate-gib 0    # measured only

Per case it prints ``sec_cybert.planning.memory.estimate_step_memory``'s ``peak`` against
``torch.cuda.max_memory_allocated`` (the tensors: the target is within 10 %) and its ``total``
against ``max_memory_reserved`` (what the allocator held), for a step as the Trainer runs it
under accumulation: gradients of an earlier micro-batch resident, AdamW moments present, bf16
autocast over float32 weights (``measure_step_memory``). Then it runs the cases again with
this process capped at ``--emulate-gib`` (24: the reference's RTX 3090) through
``torch.cuda.set_per_process_memory_fraction``, less the CUDA context the smaller card also
loses: a case the estimate says does not fit should run out of memory, and the others should
not. Figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from sec_cybert.planning.fitting import measure_step_memory
from sec_cybert.planning.memory import CUDA_CONTEXT_BYTES, GIB, estimate_step_memory

LARGE = {
    "vocab_size": 50368,
    "hidden_size": 1024,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "intermediate_size": 2624,
    "local_attention": 128,
    "global_attn_every_n_layers": 3,
    "max_position_embeddings": 8192,
}
#: (name, sequence length, micro-batch, gradient checkpointing, sparse head)
CASES = [
    ("DAPT as the reference ran it", 8192, 4, True, True),
    ("DAPT with a dense head", 8192, 4, True, False),
    ("TAPT, every row at 512", 512, 32, False, True),
    ("TAPT at half the micro-batch", 512, 16, False, True),
]
MASKED = 0.30


def run_case(
    attn: str, seq_len: int, batch: int, checkpointing: bool, sparse: bool, budget: float | None
) -> str:
    config = ModernBertConfig(**LARGE, sparse_prediction=sparse)
    config._attn_implementation = attn
    estimate = estimate_step_memory(
        config,
        seq_len=seq_len,
        micro_batch=batch,
        autocast_dtype="bfloat16",
        attn_implementation=attn,
        gradient_checkpointing=checkpointing,
        sparse_prediction=sparse,
        mask_probability=MASKED,
        optimizer="adamw_torch_fused",
    )
    says = (
        ""
        if budget is None
        else f" (the estimate says it {'fits' if estimate.total <= budget else 'does not fit'})"
    )
    with torch.device("cuda"):  # initialised on the card: seconds, not a minute on the CPU
        model = ModernBertForMaskedLM(config).train()
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    ids = torch.randint(10, config.vocab_size, (batch, seq_len), device="cuda")
    labels = torch.where(torch.rand(ids.shape, device="cuda") < MASKED, ids, torch.full_like(ids, -100))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    try:
        allocated = measure_step_memory(model, inputs, autocast_dtype="bfloat16", fused=True)
        reserved = torch.cuda.max_memory_reserved()
        result = (
            f"estimate peak {estimate.peak / GIB:.2f} GiB vs allocated {allocated / GIB:.2f} GiB "
            f"({estimate.peak / allocated - 1:+.1%}); estimate total {estimate.total / GIB:.2f} GiB vs reserved "
            f"{reserved / GIB:.2f} GiB + context{says}"
        )
    except torch.OutOfMemoryError:
        result = f"out of memory; estimate total {estimate.total / GIB:.2f} GiB{says}"
    del model, inputs
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--emulate-gib",
        type=float,
        default=24.0,
        help="then cap this process at a card of this many GiB (0: no)",
    )
    parser.add_argument(
        "--attn", default=None, help="default: flash_attention_2 if flash-attn is installed, else sdpa"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    attn = args.attn or ("flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa")
    total = torch.cuda.get_device_properties(0).total_memory
    print(
        f"{torch.cuda.get_device_name(0)}, {total / GIB:.1f} GiB; attention {attn}; torch {torch.__version__}"
    )
    passes: list[float | None] = [None]
    if args.emulate_gib:
        passes.append(args.emulate_gib * GIB)
    for budget in passes:
        if budget is not None:
            torch.cuda.set_per_process_memory_fraction((budget - CUDA_CONTEXT_BYTES) / total)
            print(f"capped at a {budget / GIB:g} GiB card:")
        for name, seq_len, batch, checkpointing, sparse in CASES:
            outcome = run_case(attn, seq_len, batch, checkpointing, sparse, budget)
            print(
                f"  {name} ({batch} x {seq_len}, checkpointing {checkpointing}, sparse {sparse}): {outcome}",
                flush=True,
            )


if __name__ == "__main__":
    main()
