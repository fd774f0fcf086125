"""Attention that stops at document boundaries inside a row (packed paragraphs, DAPT documents).

A row's ``position_ids`` restart at 0 where a document starts (the contract of the ``packed``
chunker, and of any chunker that writes ``position_ids``). :class:`DocumentAttention` turns
the restarts into what the model's attention implementation takes:

* ``sdpa`` / ``eager``: an ``attention_mask`` dict ``{"full_attention": 4D, "sliding_attention":
  4D}``, which ModernBERT passes through to its layers as-is. Both are built with transformers'
  own mask machinery (``masking_utils``): its bidirectional (global layers) or bidirectional
  sliding-window (local layers, ``|q - k| <= config.sliding_window``) mask function, AND its
  packed-sequence function over the segments. Boolean for sdpa, additive float for eager, as
  ``sdpa_mask`` / ``eager_mask`` make them for an unpacked batch. Within one segment positions
  are consecutive, so the window over row indices is the window over the document's positions.
* ``flash_attention_2``: the batch flattened into one row without padding, with the varlen
  kwargs ``cu_seq_lens_q/k`` and ``max_length_q/k`` that ModernBERT's layers hand to
  ``flash_attn_varlen_func`` (what ``DataCollatorWithFlattening(return_flash_attn_kwargs=True)``
  makes); flash applies the local window per sequence itself.

Padding of a padded row gets a segment of its own (its positions restart at 0 too), so no
query row is fully masked: no NaN, and padding never reaches a real token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.errors import ConfigError

if TYPE_CHECKING:
    import torch

log = structlog.get_logger(__name__)

__all__ = ["DOCUMENT_ATTENTION_MODEL_TYPES", "DocumentAttention", "check_encoder", "segment_ids"]

#: Architectures whose forward takes ``position_ids`` and a per-layer-kind ``attention_mask``
#: dict (passed through unchanged) and hands flash varlen kwargs to every layer. BERT-likes with
#: learned absolute positions and a single 2D mask (DeBERTa, NeoBERT) cannot keep documents apart.
DOCUMENT_ATTENTION_MODEL_TYPES = frozenset({"modernbert"})

IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] -> [B, T]: the index of the segment each token belongs to within its row.

    A segment ends wherever the next position is not this one + 1 (transformers'
    ``find_packed_sequence_indices``), so a restart at 0 starts a new one; a row that starts
    mid-document (a DAPT block) is one segment up to its first restart.
    """
    import torch

    first = position_ids[:, :1] - 1
    return (torch.diff(position_ids, prepend=first, dim=-1) != 1).cumsum(-1)


@attrs.frozen
class DocumentAttention:
    """How a batch keeps its documents apart, for one model: built by :meth:`from_config`."""

    implementation: Literal["sdpa", "eager", "flash_attention_2"] = attrs.field(
        validator=v.in_(IMPLEMENTATIONS)
    )
    #: The half-window of the local layers (ModernBERT's ``config.sliding_window``, half of
    #: ``local_attention``): a token sees the tokens at distance <= this. None: no local layers.
    sliding_window: int | None = attrs.field(
        default=None, validator=v.optional([v.instance_of(int), v.ge(1)])
    )
    #: dtype of eager's additive masks: the model's, as transformers makes them.
    mask_dtype: Literal["float32", "bfloat16", "float16"] = attrs.field(
        default="float32", validator=v.in_(("float32", "bfloat16", "float16"))
    )

    @classmethod
    def from_config(cls, config: Any, *, implementation: str | None = None) -> DocumentAttention:
        """For a model of ``config`` (``implementation`` defaults to the one it was loaded with).

        Raises ConfigError for an architecture that cannot take per-layer masks and position
        ids, or an attention implementation we build nothing for.
        """
        model_type = getattr(config, "model_type", None)
        name = getattr(config, "_name_or_path", None) or model_type or type(config).__name__
        if model_type not in DOCUMENT_ATTENTION_MODEL_TYPES:
            raise ConfigError(
                f"the encoder {name} ({model_type}) cannot keep packed documents apart: its forward takes "
                "no per-layer attention masks and position ids. Use the `paragraph` chunker (one paragraph "
                f"per row) with it, or an encoder of type {', '.join(sorted(DOCUMENT_ATTENTION_MODEL_TYPES))}"
            )
        implementation = implementation or getattr(config, "_attn_implementation", None) or "sdpa"
        if implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"packed rows need attention implementation {', '.join(IMPLEMENTATIONS)}, got {implementation!r} "
                f"for {name}: set training.attn_implementation to one of them, or use the `paragraph` chunker"
            )
        layer_types = tuple(getattr(config, "layer_types", None) or ())
        sliding = int(config.sliding_window) if "sliding_attention" in layer_types else None
        dtype = str(getattr(config, "dtype", None) or "float32").removeprefix("torch.")
        attention = cls(
            implementation=implementation,  # type: ignore[arg-type]
            sliding_window=sliding,
            mask_dtype=dtype if dtype in ("bfloat16", "float16") else "float32",  # type: ignore[arg-type]
        )
        log.info(
            "attention stops at document boundaries",
            encoder=name,
            implementation=attention.implementation,
            local_half_window=attention.sliding_window,
        )
        return attention

    @property
    def flattens(self) -> bool:
        """True: the batch becomes one row with varlen kwargs; False: padded rows with 4D masks."""
        return self.implementation.startswith("flash_attention")

    def masks(self, position_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-layer-kind 4D masks of a padded batch, ``[B, 1, T, T]``."""
        import torch
        from transformers.masking_utils import (
            ALL_MASK_ATTENTION_FUNCTIONS,
            and_masks,
            bidirectional_mask_function,
            packed_sequence_mask_function,
            sliding_window_bidirectional_mask_function,
        )

        batch, width = position_ids.shape
        same_segment = packed_sequence_mask_function(segment_ids(position_ids))
        make = ALL_MASK_ATTENTION_FUNCTIONS[self.implementation]

        def build(pattern: Any) -> torch.Tensor:
            return make(
                batch_size=batch,
                q_length=width,
                kv_length=width,
                mask_function=and_masks(pattern, same_segment),
                attention_mask=None,  # padding is a segment of its own
                allow_is_causal_skip=False,
                allow_is_bidirectional_skip=False,
                dtype=getattr(torch, self.mask_dtype),
                use_vmap=False,  # both functions are index-based: broadcasting builds the mask
                device=position_ids.device,
            )

        masks = {"full_attention": build(bidirectional_mask_function)}
        if self.sliding_window is not None:
            masks["sliding_attention"] = build(
                sliding_window_bidirectional_mask_function(self.sliding_window)
            )
        return masks

    def batch(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        position_ids: torch.Tensor,
        lengths: list[int],
    ) -> dict[str, Any]:
        """The model inputs of a collated batch whose rows hold ``lengths`` real tokens each."""
        if not self.flattens:
            return {
                "input_ids": input_ids,
                "attention_mask": self.masks(position_ids),
                "position_ids": position_ids,
                "labels": labels,
            }
        return _flattened(input_ids, labels, position_ids, lengths)


def _flattened(
    input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor, lengths: list[int]
) -> dict[str, Any]:
    """One row of every real token, and the varlen kwargs of its segments.

    As ``DataCollatorWithFlattening(return_flash_attn_kwargs=True)`` returns them: int64
    ``[1, total]`` ids, labels and positions, int32 ``cu_seq_lens``, Python-int max lengths.
    A row boundary is always a segment boundary, even where positions run on across it.
    """
    import torch

    starts: list[int] = []
    offset = 0
    for row, n in enumerate(lengths):
        segments = segment_ids(position_ids[row : row + 1, :n])[0]
        changes = torch.nonzero(torch.diff(segments, prepend=segments[:1] - 1)).flatten()
        starts.extend((changes + offset).tolist())
        offset += n
    cu_seq_lens = torch.tensor([*starts, offset], dtype=torch.int32)
    max_length = int(torch.diff(cu_seq_lens).max())

    def flat(tensor: torch.Tensor) -> torch.Tensor:
        return torch.cat([tensor[row, :n] for row, n in enumerate(lengths)]).unsqueeze(0)

    return {
        "input_ids": flat(input_ids),
        "labels": flat(labels),
        "position_ids": flat(position_ids),
        "cu_seq_lens_q": cu_seq_lens,
        "cu_seq_lens_k": cu_seq_lens,
        "max_length_q": max_length,
        "max_length_k": max_length,
    }


def check_encoder(reference: str) -> None:
    """Refuse ``reference`` (a checkpoint) when it cannot keep packed documents apart, from its
    config alone: a stage calls this before it reads and tokenizes its corpus."""
    from transformers import AutoConfig

    DocumentAttention.from_config(AutoConfig.from_pretrained(reference))
