"""Training FLOPs of an encoder's MLM step, and model FLOPs utilisation (MFU).

The count is *model* FLOPs: the matrix multiplications the architecture needs for the tokens it
is given, forward and backward, at 2 FLOPs per multiply-add. It leaves out what an
implementation adds on top (gradient checkpointing's second forward, the full L x L matrix an
SDPA kernel computes for a sliding-window layer, the wasted rows of padding), so MFU says how
much of the card's peak went into useful work, and padding or recomputation lower it.

Per micro-batch of independent attention segments of lengths l_i (the rows of a padded batch,
by their real lengths; or the paragraphs packed into rows), with T = sum l_i real tokens:

* **Weights.** 6 * N * T, where N counts the weights of the encoder layers' matmuls (ModernBERT:
  ``Wqkv`` d x 3d, ``Wo`` d x d, the GeGLU ``Wi`` d x 2I, ``Wo`` I x d). A matmul costs 2 FLOPs
  per weight per token forward and 4 backward (the gradient of its input and of its weight):
  6 in all. Token embeddings are left out: a lookup is a gather, not a matmul (the tied decoder,
  which does multiply by them, is counted in the head). Biases and norms are elementwise: left
  out as negligible (ModernBERT has no biases by default).
* **Attention**, per layer, per segment: QK^T and (softmax)V each take 2 * P * d FLOPs forward,
  P being the (query, key) pairs scored and d the hidden size (heads x head dim); the backward
  takes two matmuls of the same size for each, so 12 * P * d fwd+bwd. A global layer scores
  P = l^2; a ModernBERT local layer scores the pairs with |i - j| <= w/2 (w = ``local_attention``,
  128: up to 129 keys a query, fewer at a segment's ends), P = l^2 when l <= w/2 + 1. ModernBERT
  makes every ``global_attn_every_n_layers``-th layer (3rd) global: ``config.layer_types``.
* **MLM head**: 6 * (d^2 + d * V) per token it decodes (the d x d dense layer and the d x V
  decoder): every real token with a dense head, the masked ones only with
  ``sparse_prediction``.

MFU = achieved FLOP/s / peak FLOP/s, with the peak a card's dense bf16 tensor throughput
(:data:`PEAK_BF16_TFLOPS`). The tests check the formula by hand and against
``torch.utils.flop_counter.FlopCounterMode`` on a tiny ModernBERT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import structlog
from attrs import validators as v

log = structlog.get_logger(__name__)

__all__ = [
    "PEAK_BF16_TFLOPS",
    "EncoderShape",
    "attention_pairs",
    "device_peak_flops",
    "mfu",
    "peak_flops",
    "training_flops",
    "training_flops_per_token",
]

GLOBAL = "full_attention"
LOCAL = "sliding_attention"

#: Dense (no structured sparsity) bf16 tensor-core TFLOPS from the vendors' datasheets, by a
#: piece of the name ``torch.cuda.get_device_name()`` reports; the longest piece that matches
#: wins (``H100 PCIe`` before ``H100``). The 3090's 71 is the GA102 whitepaper's dense BF16
#: tensor rate with FP32 accumulate; the reference also quotes 35.6 (docs/configs.md, "The RTX
#: 3090's bf16 TFLOPS"), its TF32 / CUDA-core FP32 rate.
PEAK_BF16_TFLOPS: Mapping[str, float] = {
    "RTX 3090": 71.0,
    "A100": 312.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "H200": 989.0,
}


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def _layer_types(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - {GLOBAL, LOCAL})
    if unknown:
        raise ValueError(f"layer_types may hold {GLOBAL!r} and {LOCAL!r} only, got {unknown}")
    if len(value) != instance.num_layers:
        raise ValueError(f"layer_types names {len(value)} layers but num_layers is {instance.num_layers}")


@attrs.frozen
class EncoderShape:
    """What an encoder's training FLOPs depend on.

    ``glu``: the feed-forward input projection is gated (d x 2I, ModernBERT's GeGLU) rather than
    d x I (BERT). ``layer_types``: each layer's attention, ``"full_attention"`` or
    ``"sliding_attention"`` (window ``local_window`` keys wide, centred on the query).
    """

    hidden_size: int = attrs.field(validator=_positive)
    num_layers: int = attrs.field(validator=_positive)
    intermediate_size: int = attrs.field(validator=_positive)
    vocab_size: int = attrs.field(validator=_positive)
    layer_types: tuple[str, ...] = attrs.field(converter=tuple, validator=_layer_types)
    local_window: int = attrs.field(default=128, validator=_positive)
    glu: bool = attrs.field(default=True, validator=v.instance_of(bool))

    @classmethod
    def from_config(cls, config: Any) -> EncoderShape:
        """The shape of a transformers config: ModernBERT's, or a BERT-like one (all layers
        global, no gated feed-forward). Raises ``ValueError`` for other model types."""
        model_type = getattr(config, "model_type", None)
        common = {
            "hidden_size": int(config.hidden_size),
            "num_layers": int(config.num_hidden_layers),
            "intermediate_size": int(config.intermediate_size),
            "vocab_size": int(config.vocab_size),
        }
        if model_type == "modernbert":
            return cls(
                **common,
                layer_types=tuple(config.layer_types),
                local_window=int(config.local_attention),
                glu=True,
            )
        if model_type in ("bert", "roberta", "xlm-roberta", "electra"):
            return cls(**common, layer_types=(GLOBAL,) * common["num_layers"], glu=False)
        raise ValueError(
            f"no FLOPs formula for model type {model_type!r}: ModernBERT and BERT-like encoders only"
        )

    @property
    def layer_matmul_params(self) -> int:
        """Weights of one encoder layer's matmuls: QKV and output projections, feed-forward."""
        d, inner = self.hidden_size, self.intermediate_size
        return 4 * d * d + (3 if self.glu else 2) * d * inner

    @property
    def matmul_params(self) -> int:
        """N: the encoder layers' matmul weights (embeddings and head left out; see the module)."""
        return self.num_layers * self.layer_matmul_params

    @property
    def head_params(self) -> int:
        """The MLM head's matmul weights: the d x d dense layer and the d x V decoder."""
        return self.hidden_size * self.hidden_size + self.hidden_size * self.vocab_size


def attention_pairs(length: int, window: int | None = None) -> int:
    """(query, key) pairs one attention layer scores over a segment of ``length`` tokens:
    ``length**2`` for a global layer (``window=None``); with a sliding window ``window`` keys
    wide, the pairs with ``|i - j| <= window // 2``."""
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if window is None:
        return length * length
    half = window // 2
    # Sum over queries of the keys within `half` on either side, clipped at the segment's ends:
    # length + 2 * sum_i min(i, half) for i in [0, length).
    below = (
        length * (length - 1) // 2
        if length - 1 <= half
        else half * (half + 1) // 2 + (length - 1 - half) * half
    )
    return length + 2 * below


def training_flops(
    shape: EncoderShape,
    segment_lengths: Iterable[int],
    *,
    predicted_tokens: int | None = None,
) -> int:
    """Model FLOPs of one forward+backward over independent segments (see the module docstring).

    ``segment_lengths``: the real length of each padded row, or of each paragraph packed into a
    row. ``predicted_tokens``: the tokens the MLM head decodes -- the masked ones with sparse
    prediction; ``None`` (a dense head) decodes every real token.
    """
    lengths = [int(n) for n in segment_lengths]
    if any(n < 0 for n in lengths):
        raise ValueError("segment lengths must be >= 0")
    tokens = sum(lengths)
    if predicted_tokens is None:
        predicted_tokens = tokens
    if not 0 <= predicted_tokens <= tokens:
        raise ValueError(
            f"predicted_tokens must be between 0 and the {tokens} tokens, got {predicted_tokens}"
        )
    n_global = shape.layer_types.count(GLOBAL)
    n_local = shape.num_layers - n_global
    pairs = n_global * sum(attention_pairs(n) for n in lengths)
    if n_local:
        pairs += n_local * sum(attention_pairs(n, shape.local_window) for n in lengths)
    return (
        6 * shape.matmul_params * tokens
        + 12 * shape.hidden_size * pairs
        + 6 * shape.head_params * predicted_tokens
    )


def training_flops_per_token(shape: EncoderShape, seq_len: int, *, predicted_fraction: float = 1.0) -> float:
    """Model FLOPs per token for rows of ``seq_len`` real tokens (no padding, one segment a
    row), with the head decoding ``predicted_fraction`` of them (1 dense; the masking rate, e.g.
    0.3, with sparse prediction)."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if not 0.0 <= predicted_fraction <= 1.0:
        raise ValueError(f"predicted_fraction must be in [0, 1], got {predicted_fraction}")
    without_head = training_flops(shape, [seq_len], predicted_tokens=0) / seq_len
    return without_head + 6 * shape.head_params * predicted_fraction


def mfu(tokens_per_second: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: the share of ``peak_flops`` (FLOP/s) the model FLOPs of
    ``tokens_per_second`` real tokens use."""
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be > 0, got {peak_flops}")
    if tokens_per_second < 0 or flops_per_token < 0:
        raise ValueError("tokens_per_second and flops_per_token must be >= 0")
    return tokens_per_second * flops_per_token / peak_flops


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak in FLOP/s of the card called ``device_name`` (as
    ``torch.cuda.get_device_name()`` says), or ``None`` for a card not in the table."""
    name = device_name.lower()
    matches = [key for key in PEAK_BF16_TFLOPS if key.lower() in name]
    if not matches:
        return None
    return PEAK_BF16_TFLOPS[max(matches, key=len)] * 1e12


def device_peak_flops(device: Any = None) -> float | None:
    """:func:`peak_flops` of a CUDA ``device`` (the current one by default); ``None`` on a CPU
    or an unknown card, where MFU is not reported."""
    import torch

    if not torch.cuda.is_available():
        return None
    if device is not None and torch.device(device).type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    peak = peak_flops(name)
    if peak is None:
        log.info("no peak FLOPS known for this GPU: MFU not reported", device=name)
    return peak
