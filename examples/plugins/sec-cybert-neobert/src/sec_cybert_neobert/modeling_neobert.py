"""NeoBERT in plain PyTorch on transformers' public ``PreTrainedModel`` API.

Architecture (Le Breton et al., 2025; the chandar-lab/NeoBERT reference code):

* token embedding only: no absolute positions, no token types, no embedding norm;
* ``num_hidden_layers`` pre-norm blocks:
  ``x = x + Wo(attn(RoPE(q), RoPE(k), v))`` on ``RMSNorm(x)``, then
  ``x = x + W3(silu(W1 h) * W2 h)`` on ``RMSNorm(x)`` (SwiGLU; W1 and W2 packed as ``w12``);
* a final RMSNorm; no bias in any linear layer of the encoder; no dropout;
* rotary embeddings on every head, rotating adjacent pairs of dimensions (2i, 2i+1) by
  ``position * theta^(-2i/head_dim)`` (the complex-number formulation of the reference code);
* attention with ``torch.nn.functional.scaled_dot_product_attention`` (or an explicit softmax when
  ``attn_implementation="eager"``), padded keys masked out.

Parameter names follow the reference code (``encoder`` is the token embedding,
``transformer_encoder`` the blocks, ``qkv``/``wo``/``ffn.w12``/``ffn.w3`` inside a block,
``layer_norm`` the final norm, ``decoder`` the masked-LM projection).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GradientCheckpointingLayer, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

from sec_cybert_neobert.configuration_neobert import NeoBERTConfig

IGNORE_INDEX = -100


def rotary_cos_sin(
    position_ids: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, shape ``(batch, seq, head_dim / 2)``, in float32.

    Computed on the fly (a few thousand multiplications) rather than held in a buffer, so nothing
    position-related needs initialising when transformers materialises the model from meta tensors.
    """
    exponent = torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim
    inv_freq = 1.0 / (theta**exponent)
    angles = position_ids.to(torch.float32)[..., None] * inv_freq
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[2i], x[2i+1]) of ``x`` (batch, heads, seq, head_dim) by its angle."""
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    cos, sin = cos[:, None], sin[:, None]  # broadcast over heads
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


class NeoBERTSwiGLU(nn.Module):
    """``w3(silu(a) * b)`` with ``[a, b] = w12(x)``; no biases."""

    def __init__(self, config: NeoBERTConfig) -> None:
        super().__init__()
        hidden = config.swiglu_hidden_size
        self.w12 = nn.Linear(config.hidden_size, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class NeoBERTLayer(GradientCheckpointingLayer):
    """One pre-RMSNorm encoder block: self-attention with RoPE, then SwiGLU."""

    def __init__(self, config: NeoBERTConfig) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.attention_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.wo = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.ffn_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.ffn = NeoBERTSwiGLU(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_bias: torch.Tensor | None = None,
        cos: torch.Tensor | None = None,
        sin: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden_states = hidden_states + self._attention(
            self.attention_norm(hidden_states), attention_bias, cos, sin
        )
        return hidden_states + self.ffn(self.ffn_norm(hidden_states))

    def _attention(
        self, x: torch.Tensor, attention_bias: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        batch, seq, width = x.shape
        # The reference code lays qkv out head by head: [q_h | k_h | v_h] for each head h.
        q, k, v = self.qkv(x).view(batch, seq, self.num_heads, 3 * self.head_dim).chunk(3, dim=-1)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, heads, seq, head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if self.config._attn_implementation == "eager":
            scores = torch.matmul(q, k.transpose(-1, -2)) * self.head_dim**-0.5
            if attention_bias is not None:
                scores = scores + attention_bias
            weights = scores.float().softmax(dim=-1).to(q.dtype)
            out = torch.matmul(weights, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_bias)
        return self.wo(out.transpose(1, 2).reshape(batch, seq, width))


class NeoBERTPreTrainedModel(PreTrainedModel):
    config_class = NeoBERTConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["NeoBERTLayer"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        # torch.nn.init is guarded by transformers during from_pretrained: loaded tensors are kept.
        bound = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.uniform_(module.weight, -bound, bound)
        elif isinstance(module, nn.RMSNorm):
            nn.init.ones_(module.weight)


def _attention_bias(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(batch, seq) 1/0 mask -> additive (batch, 1, 1, seq) bias: 0 for tokens, dtype-min for padding.

    Additive rather than boolean so that a row with no visible key (an all-padding sequence) softmaxes
    to a uniform average instead of NaN.
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must be (batch, seq) of 1/0, got shape {tuple(attention_mask.shape)}"
        )
    keep = attention_mask[:, None, None, :].to(torch.bool)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


class NeoBERTModel(NeoBERTPreTrainedModel):
    """The bare encoder: token ids in, final-norm hidden states out."""

    # Loading a masked-LM checkpoint into the bare encoder leaves the decoder behind, as intended.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\."]

    def __init__(self, config: NeoBERTConfig) -> None:
        super().__init__(config)
        self.encoder = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.transformer_encoder = nn.ModuleList(
            NeoBERTLayer(config) for _ in range(config.num_hidden_layers)
        )
        self.layer_norm = nn.RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        """``kwargs`` absorbs what generic callers pass (``token_type_ids``, ``output_attentions`` ...)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        hidden_states = self.encoder(input_ids) if inputs_embeds is None else inputs_embeds
        batch, seq = hidden_states.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(seq, device=hidden_states.device)[None].expand(batch, -1)
        cos, sin = rotary_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta)
        bias = _attention_bias(attention_mask, hidden_states.dtype)

        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        all_hidden = [hidden_states] if output_hidden_states else None
        for layer in self.transformer_encoder:
            hidden_states = layer(hidden_states, attention_bias=bias, cos=cos, sin=sin)
            if all_hidden is not None:
                all_hidden.append(hidden_states)
        hidden_states = self.layer_norm(hidden_states)

        output = BaseModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=tuple(all_hidden) if all_hidden is not None else None,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


class NeoBERTForMaskedLM(NeoBERTPreTrainedModel):
    """The encoder and a linear decoder to the vocabulary, tied to the token embedding by default."""

    # transformers v5: {target: source}, honoured when config.tie_word_embeddings is true.
    _tied_weights_keys = {"decoder.weight": "model.encoder.weight"}

    def __init__(self, config: NeoBERTConfig) -> None:
        super().__init__(config)
        self.model = NeoBERTModel(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.decoder = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        """Cross-entropy over positions whose label is not -100.

        With ``num_items_in_batch`` (the Trainer passes it under gradient accumulation) the loss is
        the summed token loss divided by it, so accumulated micro-batches weigh every masked token
        equally; otherwise it is the mean over this batch's masked tokens.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.decoder(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            flat_logits = logits.view(-1, logits.size(-1)).float()
            flat_labels = labels.view(-1).to(logits.device)
            if num_items_in_batch is None:
                loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX)
            else:
                loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
                if torch.is_tensor(num_items_in_batch):
                    num_items_in_batch = num_items_in_batch.to(loss.device)
                loss = loss / num_items_in_batch
        output = MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()
