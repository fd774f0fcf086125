"""Throughput of the MLM data path: maskers and the collator, at the reference's shapes.

    python benchmarks/bench_masking.py [--repeat 20]

DAPT: token masking of 4 x 8192 blocks (one per-device batch of the reference run).
TAPT: whole-word masking of 32 paragraphs of ~127 tokens (P99 386), padded per batch.
Reports batches/s and tokens/s; the collator must stay far ahead of the GPU (the reference's
RTX 3090 consumed ~9,700 tokens/s at 8192).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from sec_cybert.core.encoders import train_bpe_tokenizer
from sec_cybert.datapath.collator import MaskingCollator
from sec_cybert.datapath.masking import TokenMasker, WholeWordMasker


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    vocab = 50_368

    ids = torch.randint(10, vocab, (4, 8192), generator=generator)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    token = TokenMasker(probability=0.30)
    seconds = _time(lambda: token.mask(ids, special, mask_token_id=4, vocab_size=vocab, generator=generator), args.repeat)
    print(f"token masker   4x8192      {seconds * 1e3:8.2f} ms/batch  {ids.numel() / seconds / 1e6:8.2f} M tokens/s")

    lengths = torch.clamp(torch.normal(127.0, 60.0, (32,), generator=generator), 20, 386).long()
    width = int(lengths.max())
    ids = torch.randint(10, vocab, (32, width), generator=generator)
    positions = torch.arange(width).expand(32, width)
    special = positions >= lengths.unsqueeze(1)
    word_ids = torch.where(special, -1, positions // 2)
    wwm = WholeWordMasker(probability=0.30)
    seconds = _time(
        lambda: wwm.mask(ids, special, mask_token_id=4, vocab_size=vocab, word_ids=word_ids, generator=generator), args.repeat
    )
    real = int(lengths.sum())
    print(f"whole-word     32x~127     {seconds * 1e3:8.2f} ms/batch  {real / seconds / 1e6:8.2f} M tokens/s")

    tokenizer = train_bpe_tokenizer(["the audit committee oversees cybersecurity risk management"] * 200, vocab_size=400)
    features = [{"input_ids": list(range(5, 5 + int(n))), "word_ids": [i // 2 for i in range(int(n))]} for n in lengths]
    collator = MaskingCollator(tokenizer=tokenizer, masker=wwm, seed=0)
    seconds = _time(lambda: collator(features), args.repeat)
    print(f"collator+wwm   32x~127     {seconds * 1e3:8.2f} ms/batch  {real / seconds / 1e6:8.2f} M tokens/s")
    # What the MLM stage collates: rows named, so each batch's masks are seeded by its rows.
    with_rows = [{**feature, "row": i} for i, feature in enumerate(features)]
    seconds = _time(lambda: collator(with_rows), args.repeat)
    print(f"  + row seeds  32x~127     {seconds * 1e3:8.2f} ms/batch  {real / seconds / 1e6:8.2f} M tokens/s")
    print(f"({platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
