"""Attention that stops at document boundaries inside a row (packed paragraphs, DAPT documents).

A row's ``position_ids`` restart at 0 where a document starts (the contract of the ``packed``
chunker, and of any chunker that writes ``position_ids``). :class:`DocumentAttention` turns
the restarts into what the model's attention implementation takes. Two kinds of encoder can:

* ModernBERT (:data:`LAYER_KIND_MASK_MODEL_TYPES`), with ``sdpa`` / ``eager``: an
  ``attention_mask`` dict ``{"full_attention": 4D, "sliding_attention": 4D}``, which ModernBERT
  passes through to its layers as-is. Both are built with transformers' own mask machinery
  (``masking_utils``): its bidirectional (global layers) or bidirectional sliding-window (local
  layers, ``|q - k| <= config.sliding_window``) mask function, AND its packed-sequence function
  over the segments. Boolean for sdpa, additive float for eager, as ``sdpa_mask`` /
  ``eager_mask`` make them for an unpacked batch. Within one segment positions are consecutive,
  so the window over row indices is the window over the document's positions.
* BERT and the encoders built like it (:data:`SINGLE_MASK_MODEL_TYPES`: BERT, RoBERTa,
  XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT, ALBERT, MPNet), with ``sdpa`` / ``eager``: one
  ``[B, 1, T, T]`` block-diagonal mask, built the same way. Their forward hands the mask to
  ``masking_utils.create_bidirectional_mask``, which returns a 4D mask as it is
  (``_preprocess_mask_arguments``: "If the mask is already 4D, simply return as-is"), and every
  layer adds it (eager) or passes it to ``scaled_dot_product_attention`` (sdpa). Their learned
  absolute position embeddings are looked up at the ``position_ids`` given, so each document
  gets the positions it would get alone: 0, 1, ... -- shifted by ``padding_idx + 1`` for the
  RoBERTa-likes and MPNet, whose tables start there (``create_position_ids_from_input_ids``).
* ``flash_attention_2`` (either kind): the batch flattened into one row without padding, with
  the varlen kwargs ``cu_seq_lens_q/k`` and ``max_length_q/k`` that the layers hand to
  ``flash_attn_varlen_func`` (what ``DataCollatorWithFlattening(return_flash_attn_kwargs=True)``
  makes); flash applies ModernBERT's local window per sequence itself.

DeBERTa (v1, v2/v3) cannot: its embeddings multiply by the attention mask and take only a 2D
one (or ``[B, 1, 1, T]``), so a ``[B, 1, T, T]`` mask fails there before any layer runs; it
is refused with the families that can, as is any model type not listed.

A ``[B, 1, T, T]`` mask holds T^2 entries a row (one byte each for sdpa, 4 for eager in fp32;
ModernBERT's two of them): 256 KiB a row at 512 tokens, 64 MiB at 8192. A batch whose masks
pass :data:`MASK_WARN_BYTES` logs a warning once; flash-attn builds no mask at all.

Padding of a padded row gets a segment of its own (its positions restart at 0 too), so no
query row is fully masked: no NaN, and padding never reaches a real token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

log = structlog.get_logger(__name__)

__all__ = [
    "DOCUMENT_ATTENTION_MODEL_TYPES",
    "LAYER_KIND_MASK_MODEL_TYPES",
    "SINGLE_MASK_MODEL_TYPES",
    "DocumentAttention",
    "check_encoder",
    "segment_ids",
]

#: Architectures whose forward takes ``position_ids`` and a per-layer-kind ``attention_mask``
#: dict (passed through unchanged) and hands flash varlen kwargs to every layer.
LAYER_KIND_MASK_MODEL_TYPES = frozenset({"modernbert"})

#: Architectures whose forward takes ``position_ids`` (learned absolute positions) and one 4D
#: ``attention_mask`` that ``create_bidirectional_mask`` passes through unchanged, each with the
#: position its table gives a document's first token: 0, or ``padding_idx + 1`` ("pad+1") for
#: those whose positions start after the padding index. Each is proven against its documents
#: run alone in tests/test_bert_packing.py, under sdpa and eager (MPNet has no sdpa).
SINGLE_MASK_MODEL_TYPES: dict[str, str] = {
    "albert": "0",
    "bert": "0",
    "camembert": "pad+1",
    "distilbert": "0",
    "electra": "0",
    "mpnet": "pad+1",
    "roberta": "pad+1",
    "xlm-roberta": "pad+1",
}

#: Every architecture that can keep packed documents apart.
DOCUMENT_ATTENTION_MODEL_TYPES = LAYER_KIND_MASK_MODEL_TYPES | frozenset(SINGLE_MASK_MODEL_TYPES)

IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")

#: A batch whose 4D masks take more than this logs a warning (once a process): they grow with
#: the square of the row width.
MASK_WARN_BYTES = 1 << 30
_warned_mask_bytes = False


def _position_offset(model_type: str, config: Any) -> int:
    """Where the position table of ``model_type`` starts a sequence (see SINGLE_MASK_MODEL_TYPES)."""
    if SINGLE_MASK_MODEL_TYPES.get(model_type) != "pad+1":
        return 0
    if model_type == "mpnet":
        return 2  # MPNetEmbeddings fixes padding_idx at 1, whatever the config says
    return int(config.pad_token_id) + 1


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
    #: True: a dict of masks per layer kind (ModernBERT); False: one ``[B, 1, T, T]`` mask
    #: (BERT and the encoders built like it).
    per_layer_kind: bool = attrs.field(default=True, validator=v.instance_of(bool))
    #: Added to every position id the model sees: where its position table starts a sequence
    #: (``padding_idx + 1`` for RoBERTa-likes and MPNet, else 0).
    position_offset: int = attrs.field(default=0, validator=[v.instance_of(int), v.ge(0)])
    #: The size of the model's position table, if it has one: a batch that would index past it
    #: is refused with a DataError instead of an index error inside the model.
    max_positions: int | None = attrs.field(default=None, validator=v.optional([v.instance_of(int), v.ge(1)]))

    @classmethod
    def from_config(cls, config: Any, *, implementation: str | None = None) -> DocumentAttention:
        """For a model of ``config`` (``implementation`` defaults to the one it was loaded with).

        Raises ConfigError for an architecture that cannot take document masks and position ids
        (the message names those that can), or an attention implementation we build nothing for.
        """
        model_type = getattr(config, "model_type", None)
        name = getattr(config, "_name_or_path", None) or model_type or type(config).__name__
        if model_type not in DOCUMENT_ATTENTION_MODEL_TYPES:
            raise ConfigError(
                f"the encoder {name} ({model_type}) cannot keep packed documents apart: transformers' "
                f"{model_type} forward takes neither per-layer attention masks nor one [batch, 1, seq, seq] "
                "mask with per-document position ids. Use the `paragraph` chunker (one paragraph per row) "
                f"with it, or an encoder of type {', '.join(sorted(DOCUMENT_ATTENTION_MODEL_TYPES))} "
                "(docs/configs.md, Packing: which encoders can pack and why)"
            )
        implementation = implementation or getattr(config, "_attn_implementation", None) or "sdpa"
        if implementation not in IMPLEMENTATIONS:
            raise ConfigError(
                f"packed rows need attention implementation {', '.join(IMPLEMENTATIONS)}, got {implementation!r} "
                f"for {name}: set training.attn_implementation to one of them, or use the `paragraph` chunker"
            )
        per_layer_kind = model_type in LAYER_KIND_MASK_MODEL_TYPES
        layer_types = tuple(getattr(config, "layer_types", None) or ())
        sliding = (
            int(config.sliding_window) if per_layer_kind and "sliding_attention" in layer_types else None
        )
        dtype = str(getattr(config, "dtype", None) or "float32").removeprefix("torch.")
        positions = getattr(config, "max_position_embeddings", None)
        attention = cls(
            implementation=implementation,  # type: ignore[arg-type]
            sliding_window=sliding,
            mask_dtype=dtype if dtype in ("bfloat16", "float16") else "float32",  # type: ignore[arg-type]
            per_layer_kind=per_layer_kind,
            position_offset=0 if per_layer_kind else _position_offset(model_type, config),
            max_positions=None if per_layer_kind or not isinstance(positions, int) else positions,
        )
        log.info(
            "attention stops at document boundaries",
            encoder=name,
            implementation=attention.implementation,
            masks="per layer kind" if per_layer_kind else "one 4D mask",
            local_half_window=attention.sliding_window,
            position_offset=attention.position_offset,
        )
        return attention

    @property
    def flattens(self) -> bool:
        """True: the batch becomes one row with varlen kwargs; False: padded rows with 4D masks."""
        return self.implementation.startswith("flash_attention")

    def masks(self, position_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-layer-kind 4D masks of a padded batch, ``[B, 1, T, T]`` each: ``full_attention``,
        and ``sliding_attention`` when the model has local layers.

        A single-mask model (BERT and the like) takes ``masks(...)["full_attention"]``.
        """
        import torch
        from transformers.masking_utils import (
            ALL_MASK_ATTENTION_FUNCTIONS,
            and_masks,
            bidirectional_mask_function,
            packed_sequence_mask_function,
            sliding_window_bidirectional_mask_function,
        )

        batch, width = position_ids.shape
        _warn_if_large(
            batch, width, 2 if self.sliding_window is not None else 1, self.implementation, self.mask_dtype
        )
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
        """The model inputs of a collated batch whose rows hold ``lengths`` real tokens each.

        ``position_ids`` count from 0 at each document (the chunkers' contract); the model gets
        them shifted by :attr:`position_offset`, the segments are read before the shift.
        """
        if self.max_positions is not None and position_ids.numel():
            highest = int(position_ids.max()) + self.position_offset
            if highest >= self.max_positions:
                raise DataError(
                    f"a packed batch needs position {highest} but the model's position table holds "
                    f"{self.max_positions} (max_position_embeddings): shorten the chunker's rows "
                    "(max_length / seq_len) or training.pad_to_multiple_of"
                )
        if not self.flattens:
            masks = self.masks(position_ids)
            return {
                "input_ids": input_ids,
                "attention_mask": masks if self.per_layer_kind else masks["full_attention"],
                "position_ids": position_ids + self.position_offset,
                "labels": labels,
            }
        flat = _flattened(input_ids, labels, position_ids, lengths)
        flat["position_ids"] = flat["position_ids"] + self.position_offset
        return flat


def _warn_if_large(batch: int, width: int, count: int, implementation: str, dtype: str) -> None:
    """Log once a process when a batch's 4D masks pass MASK_WARN_BYTES (they are O(width^2))."""
    global _warned_mask_bytes
    if _warned_mask_bytes:
        return
    per_entry = 1 if implementation == "sdpa" else (4 if dtype == "float32" else 2)
    size = batch * width * width * count * per_entry
    if size > MASK_WARN_BYTES:
        _warned_mask_bytes = True
        log.warning(
            "packed batch attention masks are large",
            mib=round(size / 2**20),
            rows=batch,
            width=width,
            masks=count,
            why="a [rows, 1, width, width] mask per attention kind grows with the square of the width",
            remedy="a smaller batch or row, or flash_attention_2 (no mask at all) on a GPU",
        )


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
