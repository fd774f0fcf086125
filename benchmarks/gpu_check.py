"""ModernBERT-large's DAPT shape on the card at hand: step time, measured peak beside the preflight.

    python benchmarks/gpu_check.py --results benchmarks/RESULTS.md          # on an H100/H200
    python benchmarks/gpu_check.py --cpu-smoke --results /tmp/rows.md       # a tiny shape on the CPU

Random weights (no download), bf16 autocast over float32 weights, AdamW (fused on CUDA), the
sparse MLM head, 30 % of positions masked: one case per attention implementation (``sdpa``, and
``flash_attention_2`` when flash-attn is installed) x gradient checkpointing on and off. Per case:
seconds per optimizer step and tokens/s over ``--steps`` timed steps after ``--warmup``;
``sec_cybert.planning.memory.estimate_step_memory``'s ``peak`` beside the peak one training step allocated
(``measure_step_memory``: CUDA's ``max_memory_allocated``; on the CPU the tracked tensors), and
its ``total`` beside what the allocator reserved plus the CUDA context, with whether the estimate
said it fits the card. A case that runs out of memory is a row too: the estimate should have said
it does not fit. ``benchmarks/gpu_check.sh`` runs this, the GPU tests and TAPT's throughput.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import time
from pathlib import Path

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from sec_cybert.planning.fitting import measure_step_memory
from sec_cybert.planning.memory import CUDA_CONTEXT_BYTES, GIB, estimate_step_memory

SHAPES = {
    "large": {
        "vocab_size": 50368,
        "hidden_size": 1024,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "intermediate_size": 2624,
        "local_attention": 128,
        "global_attn_every_n_layers": 3,
        "max_position_embeddings": 8192,
    },
    "tiny": {
        "vocab_size": 50368,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "local_attention": 16,
        "global_attn_every_n_layers": 2,
        "max_position_embeddings": 256,
    },
}
MASKED = 0.30
HEADER = (
    "| card | case | s/step | tokens/s | preflight peak | measured peak | preflight vs measured "
    "| preflight total | reserved + context | preflight says |"
)


def card_name(device: str) -> str:
    if device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory / GIB
        return f"{torch.cuda.get_device_name(0)} ({total:.0f} GiB)"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _batch(config: ModernBertConfig, batch: int, seq_len: int, device: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(10, config.vocab_size, (batch, seq_len), generator=generator)
    masked = torch.rand(ids.shape, generator=generator) < MASKED
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
    }


def _model(config: ModernBertConfig, device: str, checkpointing: bool) -> ModernBertForMaskedLM:
    with torch.device(device):  # initialised on the card: seconds, not a minute on the CPU
        model = ModernBertForMaskedLM(config).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_case(args: argparse.Namespace, attn: str, checkpointing: bool, device: str) -> dict[str, str]:
    autocast = "bfloat16" if device == "cuda" else None
    config = ModernBertConfig(**SHAPES[args.size], sparse_prediction=True)
    config._attn_implementation = attn
    estimate = estimate_step_memory(
        config,
        seq_len=args.seq_len,
        micro_batch=args.batch,
        autocast_dtype=autocast,
        attn_implementation=attn,
        gradient_checkpointing=checkpointing,
        sparse_prediction=True,
        mask_probability=MASKED,
        optimizer="adamw_torch_fused" if device == "cuda" else "adamw",
        device=device,
    )
    capacity = torch.cuda.get_device_properties(0).total_memory if device == "cuda" else None
    row = {
        "case": f"{args.size} {args.batch} x {args.seq_len}, {attn}, checkpointing {'on' if checkpointing else 'off'}, sparse head",
        "preflight peak": f"{estimate.peak / GIB:.2f} GiB",
        "preflight total": f"{estimate.total / GIB:.2f} GiB",
        "preflight says": "—" if capacity is None else ("fits" if estimate.total <= capacity else "does not fit"),
    }
    inputs = _batch(config, args.batch, args.seq_len, device)
    try:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        measured = measure_step_memory(
            _model(config, device, checkpointing), inputs, autocast_dtype=autocast, fused=device == "cuda"
        )
        reserved = torch.cuda.max_memory_reserved() if device == "cuda" else None
        _release(device)
        seconds = _seconds_per_step(args, config, inputs, device, checkpointing, autocast)
        row.update(
            {
                "s/step": f"{seconds:.3f}",
                "tokens/s": f"{args.batch * args.seq_len / seconds:,.0f}",
                "measured peak": f"{measured / GIB:.2f} GiB",
                "preflight vs measured": f"{estimate.peak / measured - 1:+.1%}",
                "reserved + context": "—" if reserved is None else f"{(reserved + CUDA_CONTEXT_BYTES) / GIB:.2f} GiB",
            }
        )
    except torch.OutOfMemoryError:
        row.update({"s/step": "out of memory", "measured peak": f"> {capacity / GIB:.0f} GiB" if capacity else "—"})
    finally:
        _release(device)
    return row


def _seconds_per_step(
    args: argparse.Namespace,
    config: ModernBertConfig,
    inputs: dict[str, torch.Tensor],
    device: str,
    checkpointing: bool,
    autocast: str | None,
) -> float:
    model = _model(config, device, checkpointing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    dtype = getattr(torch, autocast) if autocast else None

    def step() -> None:
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _synchronize(device)
    return (time.perf_counter() - start) / args.steps


def _release(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def render(card: str, rows: list[dict[str, str]]) -> list[str]:
    columns = [c.strip() for c in HEADER.strip("|").split("|")]
    lines = [HEADER, "|---" * len(columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(card if c == "card" else row.get(c, "—") for c in columns) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="the tiny shape on the CPU, 2 x 128: checks the script, not a card")
    parser.add_argument("--size", choices=SHAPES, default="large")
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--attn", default="auto", help="comma-separated; auto: sdpa, and flash_attention_2 when flash-attn is installed")
    parser.add_argument("--checkpointing", default="on,off")
    parser.add_argument("--results", type=Path, help="append the table here (markdown)")
    args = parser.parse_args()
    if args.cpu_smoke:
        args.size, args.seq_len, args.batch, args.steps, args.warmup = "tiny", 128, 2, 1, 1
        device = "cpu"
    elif not torch.cuda.is_available():
        raise SystemExit("gpu_check.py needs a CUDA GPU (or --cpu-smoke)")
    else:
        device = "cuda"
    attns = (
        ["sdpa"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") and device == "cuda" else [])
        if args.attn == "auto"
        else args.attn.split(",")
    )
    card = card_name(device)
    rows = []
    for attn in attns:
        for checkpointing in (value == "on" for value in args.checkpointing.split(",")):
            rows.append(run_case(args, attn, checkpointing, device))
            print(" | ".join(f"{k}: {v}" for k, v in rows[-1].items()), flush=True)
    table = render(card, rows)
    print("\n".join(table))
    if args.results:
        with args.results.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
