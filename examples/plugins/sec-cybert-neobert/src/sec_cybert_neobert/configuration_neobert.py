"""NeoBERT's configuration (Le Breton et al., 2025, "NeoBERT: A Next-Generation BERT").

The defaults are the published model: 28 pre-RMSNorm layers of width 768, 12 heads, a SwiGLU
feed-forward sized from ``intermediate_size`` = 3072, rotary position embeddings, a 4096-token
context and BERT's uncased WordPiece vocabulary (30522 tokens, ``[PAD]`` = 0).
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

# Keys of the hub checkpoint's config.json (chandar-lab/NeoBERT, remote code) that we accept as
# aliases or derive ourselves, so that such a config.json still builds a NeoBERTConfig.
_DERIVED_HUB_KEYS = ("dim_head", "kwargs", "decoder_init_range")


class NeoBERTConfig(PretrainedConfig):
    r"""Configuration of a :class:`~sec_cybert_neobert.modeling_neobert.NeoBERTModel`.

    Args:
        vocab_size: Size of the vocabulary (rows of the token embedding).
        hidden_size: Width of the residual stream.
        num_hidden_layers: Number of encoder blocks.
        num_attention_heads: Attention heads per block; ``hidden_size / num_attention_heads`` must
            be an even integer (rotary embeddings rotate pairs of dimensions).
        intermediate_size: Nominal feed-forward width. As in the published model, the SwiGLU
            hidden width is ``2/3`` of it rounded up to a multiple of 8 (3072 -> 2048), which keeps
            the parameter count of a GELU MLP of width ``intermediate_size``.
        max_position_embeddings: Longest sequence the model is meant for (the tokenizer's
            ``model_max_length``). RoPE has no learned positions, so this is advisory.
            ``max_length`` (the hub config's name) is accepted as an alias.
        rope_theta: Base of the rotary frequencies.
        norm_eps: Epsilon of the RMSNorm layers.
        initializer_range: Half-width of the uniform initialisation of linear and embedding weights
            (the reference code's ``embedding_init_range``/``decoder_init_range``).
        decoder_bias: Whether the masked-LM decoder has a bias (it does in the reference code).
        tie_word_embeddings: Tie the masked-LM decoder weight to the token embedding. The published
            checkpoint keeps them separate; tying halves the embedding parameters of small models.
    """

    model_type = "neobert"

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 28,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        max_position_embeddings: int | None = None,
        rope_theta: float = 10000.0,
        norm_eps: float = 1e-5,
        initializer_range: float | None = None,
        decoder_bias: bool = True,
        tie_word_embeddings: bool = True,
        pad_token_id: int | None = 0,
        **kwargs: Any,
    ) -> None:
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of "
                f"num_attention_heads ({num_attention_heads})"
            )
        if (hidden_size // num_attention_heads) % 2:
            raise ValueError(
                f"the head dimension hidden_size / num_attention_heads = "
                f"{hidden_size // num_attention_heads} must be even for rotary position embeddings"
            )
        # `max_length` is a generation parameter in transformers; the hub config uses it for the context.
        max_length = kwargs.pop("max_length", None)
        if max_position_embeddings is None:
            max_position_embeddings = max_length if max_length is not None else 4096
        embedding_init_range = kwargs.pop("embedding_init_range", None)
        if initializer_range is None:
            initializer_range = embedding_init_range if embedding_init_range is not None else 0.02
        for key in _DERIVED_HUB_KEYS:
            kwargs.pop(key, None)

        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.norm_eps = norm_eps
        self.initializer_range = initializer_range
        self.decoder_bias = decoder_bias
        self.tie_word_embeddings = tie_word_embeddings
        self.pad_token_id = pad_token_id
        super().__init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def swiglu_hidden_size(self) -> int:
        """2/3 of ``intermediate_size``, rounded up to a multiple of 8 (the reference code's rule)."""
        multiple_of = 8
        size = int(2 * self.intermediate_size / 3)
        return multiple_of * ((size + multiple_of - 1) // multiple_of)
