"""The FLOPs formula, by hand and against torch's FlopCounterMode on a tiny ModernBERT."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import ModernBertConfig, ModernBertForMaskedLM

from sec_cybert.planning.flops import (
    GLOBAL,
    LOCAL,
    EncoderShape,
    attention_pairs,
    mfu,
    peak_flops,
    training_flops,
    training_flops_per_token,
)
from sec_cybert.testing import tiny_modernbert_config

D, LAYERS, INNER, VOCAB = 64, 3, 96, 512


def _config(attn: str, *, sparse: bool = False) -> ModernBertConfig:
    # Three layers: global, local, local (every 3rd layer is global, as in ModernBERT).
    return tiny_modernbert_config(
        vocab_size=VOCAB,
        hidden_size=D,
        num_hidden_layers=LAYERS,
        intermediate_size=INNER,
        max_position_embeddings=512,
        sparse_prediction=sparse,
        attn_implementation=attn,
    )


def _counted(config: ModernBertConfig, length: int, rows: int = 2) -> tuple[int, dict[str, int], int]:
    """FlopCounterMode's total and per-op FLOPs of one fwd+bwd, and the masked-token count."""
    torch.manual_seed(0)
    model = ModernBertForMaskedLM(config)
    ids = torch.randint(5, VOCAB, (rows, length))
    labels = torch.full_like(ids, -100)
    labels[:, ::3] = ids[:, ::3]
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
    per_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), per_op, int((labels != -100).sum())


def test_shape_reads_modernbert_layer_types_and_window():
    shape = EncoderShape.from_config(_config("eager"))
    assert shape.layer_types == (GLOBAL, LOCAL, LOCAL)
    assert shape.local_window == 128
    # Wqkv 64x192 + Wo 64x64 + Wi 64x192 + Wo 96x64, per layer.
    assert shape.layer_matmul_params == 64 * 192 + 64 * 64 + 64 * 192 + 96 * 64
    assert shape.head_params == 64 * 64 + 64 * 512


def test_formula_by_hand():
    shape = EncoderShape.from_config(_config("eager"))
    # Two segments, 100 and 20 tokens; 30 of them decoded by a sparse head.
    n = 3 * (4 * D * D + 3 * D * INNER)
    weights = 6 * n * 120
    # Global layer: all pairs. Local layers: |i - j| <= 64; a 100-token segment loses the
    # pairs further apart than 64: (100 - 65) * (100 - 64) pairs = 35 * 36 = 1260.
    global_pairs = 100**2 + 20**2
    local_pairs = (100**2 - 35 * 36) + 20**2
    attention = 12 * D * (global_pairs + 2 * local_pairs)
    head = 6 * (D * D + D * VOCAB) * 30
    assert training_flops(shape, [100, 20], predicted_tokens=30) == weights + attention + head
    # A dense head decodes all 120 tokens.
    assert training_flops(shape, [100, 20]) == weights + attention + 6 * (D * D + D * VOCAB) * 120


def test_attention_pairs_band():
    assert attention_pairs(50) == 2500
    assert attention_pairs(65, 128) == 65**2  # every key within 64 of every query
    # Mid-sequence a query sees 129 keys; 8192 tokens lose 64*65 pairs at each end.
    assert attention_pairs(8192, 128) == 8192 * 129 - 64 * 65
    brute = sum(1 for i in range(300) for j in range(300) if abs(i - j) <= 64)
    assert attention_pairs(300, 128) == brute


def test_packing_counts_attention_per_segment():
    shape = EncoderShape.from_config(_config("eager"))
    packed = training_flops(shape, [40, 40, 40])
    one_row = training_flops(shape, [120])
    # Same tokens, so the same weight and head FLOPs; attention is counted within each
    # 40-token paragraph rather than across the 120-token row, in every layer (a 120-token
    # segment reaches past a local layer's +-64 window, a 40-token one does not).
    assert packed < one_row
    assert one_row - packed == 12 * D * (
        (120**2 - 3 * 40**2) + 2 * (attention_pairs(120, 128) - 3 * attention_pairs(40, 128))
    )


def test_per_token_figure_matches_the_batch_formula():
    shape = EncoderShape.from_config(_config("eager"))
    batch = training_flops(shape, [256] * 4, predicted_tokens=256)
    assert training_flops_per_token(shape, 256, predicted_fraction=0.25) * 1024 == pytest.approx(
        batch, rel=1e-9
    )


@pytest.mark.parametrize("sparse", [False, True])
def test_matches_flop_counter_with_eager_attention(sparse):
    # 48 tokens: within the local window, so the eager kernel's dense L x L product is exactly
    # what the formula counts. The counter sees every matmul (mm, addmm, bmm) and no
    # elementwise op; the formula leaves out the same ones, so the two agree exactly.
    total, per_op, masked = _counted(_config("eager", sparse=sparse), 48)
    shape = EncoderShape.from_config(_config("eager", sparse=sparse))
    assert total == training_flops(shape, [48, 48], predicted_tokens=masked if sparse else None)
    assert per_op["aten.bmm"] == 12 * D * 3 * 2 * 48**2  # QK^T and AV, 3 layers, 2 rows


def test_eager_kernel_computes_more_than_the_window_needs():
    # Beyond the window, eager attention still multiplies the full L x L matrices (the window is
    # a mask added afterwards): the counter exceeds the model FLOPs by the masked-out pairs.
    total, _, _ = _counted(_config("eager"), 200, rows=1)
    shape = EncoderShape.from_config(_config("eager"))
    wasted = 12 * D * 2 * (200**2 - attention_pairs(200, 128))
    assert total - training_flops(shape, [200]) == wasted


def test_cpu_sdpa_is_not_seen_by_the_counter():
    # FlopCounterMode has formulas for the CUDA SDPA kernels, not for the CPU flash kernel
    # SDPA dispatches to here: on CPU it counts the matmuls outside attention only.
    total, per_op, _ = _counted(_config("sdpa"), 48)
    shape = EncoderShape.from_config(_config("sdpa"))
    assert "aten.bmm" not in per_op
    assert total == training_flops(shape, [48, 48]) - 12 * D * 3 * 2 * 48**2


def test_mfu_and_peaks():
    assert mfu(10_000, 1e9, 1e14) == pytest.approx(0.1)
    assert peak_flops("NVIDIA GeForce RTX 3090") == 71e12
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12  # the longest matching name wins
    assert peak_flops("NVIDIA H200") == 989e12
    assert peak_flops("Tesla T4") is None
    with pytest.raises(ValueError, match="peak_flops"):
        mfu(1.0, 1.0, 0.0)


def test_unknown_model_type_is_refused():
    class Config:
        model_type = "gpt2"
        hidden_size = num_hidden_layers = intermediate_size = vocab_size = 8

    with pytest.raises(ValueError, match="gpt2"):
        EncoderShape.from_config(Config())


def test_bert_like_shape_has_no_gate_and_global_layers():
    from transformers import BertConfig

    config = BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, vocab_size=100
    )
    shape = EncoderShape.from_config(config)
    assert shape.layer_types == (GLOBAL, GLOBAL)
    assert shape.layer_matmul_params == 4 * 64 * 64 + 2 * 64 * 128
