"""What the memory model needs of a transformers config: the layer shapes, and the parameter counts
(from ModernBERT's module structure, or a model built on the meta device for anything else)."""

from __future__ import annotations

import functools
from typing import Any

import attrs

from sec_cybert.errors import ConfigError

GLOBAL, LOCAL = "full_attention", "sliding_attention"


@attrs.frozen
class Arch:
    """What the count needs of a config."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    layer_types: tuple[str, ...]
    #: The local layers' half window: transformers skips their mask only below it.
    half_window: int
    modernbert: bool
    sparse_capable: bool
    #: Dropout probabilities that are on (> 0): each keeps a boolean mask for the backward pass.
    embedding_dropout: float = 0.0
    attention_dropout: float = 0.0
    mlp_dropout: float = 0.0


def arch_of(config: Any) -> Arch:
    try:
        hidden, layers = int(config.hidden_size), int(config.num_hidden_layers)
        heads, inner, vocab = (
            int(config.num_attention_heads),
            int(config.intermediate_size),
            int(config.vocab_size),
        )
    except (AttributeError, TypeError) as exc:
        raise ConfigError(
            f"the model config ({type(config).__name__}) lacks {exc}: the memory estimate needs hidden_size, "
            "num_hidden_layers, num_attention_heads, intermediate_size and vocab_size"
        ) from None
    modernbert = getattr(config, "model_type", None) == "modernbert"
    if modernbert:
        types = tuple(config.layer_types)
        half = int(getattr(config, "sliding_window", None) or int(config.local_attention) // 2)
    else:
        types, half = (GLOBAL,) * layers, 0
    return Arch(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=inner,
        vocab=vocab,
        layer_types=types,
        half_window=half,
        modernbert=modernbert,
        sparse_capable=modernbert and hasattr(config, "sparse_prediction"),
        embedding_dropout=float(getattr(config, "embedding_dropout", 0.0) or 0.0) if modernbert else 0.0,
        attention_dropout=float(getattr(config, "attention_dropout", 0.0) or 0.0) if modernbert else 0.0,
        mlp_dropout=float(getattr(config, "mlp_dropout", 0.0) or 0.0) if modernbert else 0.0,
    )


@functools.lru_cache(maxsize=32)
def built_parameter_counts(config_json: str, model_type: str, head: str) -> tuple[int, int, int, int]:
    """(parameters, matmul weights, largest tensor, head matmul weights), counted on a model
    built on the meta device from the config: exact for any architecture, no weights read."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    config = AutoConfig.for_model(model_type, **_config_dict(config_json))
    auto = AutoModelForMaskedLM if head == "mlm" else AutoModel
    with torch.device("meta"):
        model = auto.from_config(config)
    parameters = list(model.parameters())  # tied weights (the decoder's) once
    linear = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)}
    output = model.get_output_embeddings() if head == "mlm" else None
    head_linear = output.weight.numel() if output is not None else 0
    head_linear += config.hidden_size**2 if head == "mlm" else 0  # the prediction head's dense layer
    return (
        sum(p.numel() for p in parameters),
        sum(linear.values()),
        max(p.numel() for p in parameters),
        head_linear,
    )


def _config_dict(config_json: str) -> dict[str, Any]:
    import json

    data = json.loads(config_json)
    data.pop("model_type", None)
    return data


def modernbert_parameter_counts(config: Any, head: str) -> tuple[int, int, int, int]:
    """:func:`built_parameter_counts` for ModernBERT, from its module structure: the same numbers
    without building a model (seconds for the large one)."""
    h, n, inner, V = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
    norm = h * (2 if config.norm_bias else 1)
    attention = 4 * h * h + (4 * h if config.attention_bias else 0)
    mlp = 3 * h * inner + (2 * inner + h if config.mlp_bias else 0)
    # Embeddings and their norm; per layer two norms (layer 0 lacks the attention norm, the
    # final norm makes up for it in the count).
    total = V * h + norm + n * (attention + mlp + 2 * norm)
    linear = n * (4 * h * h + 3 * h * inner)
    head_linear = 0
    if head == "mlm":
        tied = getattr(config, "tie_word_embeddings", True)
        total += h * h + (h if config.classifier_bias else 0) + norm + (0 if tied else V * h)
        total += V if config.decoder_bias else 0
        head_linear = h * h + V * h
        linear += head_linear
    return total, linear, max(V * h, 2 * inner * h), head_linear


def parameter_counts(config: Any, head: str) -> tuple[int, int, int, int]:
    if getattr(config, "model_type", None) == "modernbert":
        return modernbert_parameter_counts(config, head)
    return built_parameter_counts(config.to_json_string(use_diff=False), config.model_type, head)
