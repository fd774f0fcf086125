"""Classification heads on one shared encoder: softmax, ordinal (CORAL or thresholds), multi-label.

The fine-tuned directory stays loadable by plain transformers: the encoder is saved with
``save_pretrained`` (``AutoModel.from_pretrained(dir)`` loads it) and the heads sit beside it
in ``heads.safetensors`` with their label maps in ``heads.json``. One head at a time exports to a
plain ``AutoModelForSequenceClassification`` checkpoint with the same logits
(:func:`sec_cybert.sharing.export.export_head`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from sec_cybert.stages.heads import Head

HEADS_CONFIG = "heads.json"
HEADS_WEIGHTS = "heads.safetensors"


class AttentionPooling(nn.Module):
    """A learned query scores each token; the sequence vector is the score-weighted mean."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.score = nn.Linear(hidden, 1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        scores = (
            self.score(hidden_states)
            .squeeze(-1)
            .masked_fill(attention_mask == 0, torch.finfo(hidden_states.dtype).min)
        )
        weights = scores.softmax(dim=-1).unsqueeze(-1)
        return (weights * hidden_states).sum(dim=1)


class OrdinalCoral(nn.Module):
    """CORAL: logit_k = w . h + b_k, one shared w so the thresholds stay rank-consistent."""

    def __init__(self, hidden: int, thresholds: int) -> None:
        super().__init__()
        self.weight = nn.Linear(hidden, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(thresholds))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.weight(pooled) + self.bias


def ordinal_targets(labels: torch.Tensor, thresholds: int) -> torch.Tensor:
    """Label y as N-1 binary targets [y > 0, y > 1, ...]."""
    ranks = torch.arange(thresholds, device=labels.device)
    return (labels.unsqueeze(-1) > ranks).float()


def ordinal_predictions(logits: torch.Tensor) -> torch.Tensor:
    """The predicted rank is how many thresholds the example passes."""
    return (torch.sigmoid(logits) > 0.5).sum(dim=-1)


class MultiHeadClassifier(nn.Module):
    """A transformers encoder, a pooling, and one head per target, trained on the summed losses."""

    def __init__(
        self,
        encoder: nn.Module,
        heads: tuple[Head, ...],
        *,
        pooling: str = "cls",
        dropout: float = 0.1,
        class_weights: dict[str, list[float]] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # the Trainer reads model.config
        self.head_specs = heads
        self.pooling_kind = pooling
        hidden = encoder.config.hidden_size
        self.attention_pool = AttentionPooling(hidden) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict(
            {
                h.name: OrdinalCoral(hidden, h.output_size)
                if h.kind == "coral"
                else nn.Linear(hidden, h.output_size)
                for h in heads
            }
        )
        for head in heads:
            weights = (class_weights or {}).get(head.name)
            self.register_buffer(
                f"class_weight_{head.name}", torch.tensor(weights) if weights else None, persistent=False
            )

    def pool(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling_kind == "cls":
            return hidden_states[:, 0]
        if self.pooling_kind == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
            return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.attention_pool(hidden_states, attention_mask)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **labels: torch.Tensor
    ) -> dict[str, Any]:
        hidden_states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(self.pool(hidden_states, attention_mask))
        outputs: dict[str, Any] = {}
        loss = None
        for head in self.head_specs:
            logits = self.heads[head.name](pooled)
            outputs[f"logits_{head.name}"] = logits
            target = labels.get(f"labels_{head.name}")
            if target is not None:
                head_loss = self._loss(head, logits, target) * head.loss_weight
                loss = head_loss if loss is None else loss + head_loss
        if loss is not None:
            outputs = {"loss": loss, **outputs}
        return outputs

    def _loss(self, head: Head, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return head_loss(head, logits, target, class_weight=getattr(self, f"class_weight_{head.name}"))

    # The Trainer turns checkpointing on through this (v5's name for gradient checkpointing).
    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict | None = None, **kwargs: Any
    ) -> None:
        enable = getattr(self.encoder, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs, **kwargs)
        else:
            self.encoder.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs=activation_checkpointing_kwargs
            )

    def save(self, directory: Path, tokenizer: Any = None) -> None:
        """Write the encoder (``from_pretrained``-loadable), the tokenizer and the heads."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        head_state = {
            k: t.detach().contiguous().cpu()
            for k, t in self.state_dict().items()
            if not k.startswith("encoder.")
        }
        save_file(head_state, directory / HEADS_WEIGHTS)
        spec = {
            "pooling": self.pooling_kind,
            "heads": [attrs.asdict(h) for h in self.head_specs],
        }
        (directory / HEADS_CONFIG).write_text(json.dumps(spec, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> MultiHeadClassifier:
        """Rebuild a saved classifier for inference: ``MultiHeadClassifier.load("runs/x/finetune-dapt")``."""
        from safetensors.torch import load_file
        from transformers import AutoModel

        directory = Path(directory)
        spec = json.loads((directory / HEADS_CONFIG).read_text())
        heads = tuple(Head(**h) for h in spec["heads"])
        model = cls(AutoModel.from_pretrained(directory), heads, pooling=spec["pooling"])
        missing, unexpected = model.load_state_dict(load_file(directory / HEADS_WEIGHTS), strict=False)
        missing = [key for key in missing if not key.startswith("encoder.")]
        if missing or unexpected:
            from sec_cybert.errors import DataError

            raise DataError(
                f"{directory / HEADS_WEIGHTS} does not match {HEADS_CONFIG}: missing {missing}, unexpected {unexpected}"
            )
        return model.eval()

    def predict(self, logits: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {h.name: decode(h, logits[f"logits_{h.name}"]) for h in self.head_specs}


def head_loss(
    head: Head, logits: torch.Tensor, target: torch.Tensor, *, class_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """One head's loss on a batch, a mean over its examples, before ``head.loss_weight``.

    softmax: cross-entropy (weighted by ``class_weight``). Ordinal (coral, thresholds): the binary
    cross-entropies of an example's N-1 thresholds are *summed*, as in Cao et al. (2020) and the
    OR-CNN it extends (Niu et al., 2016); averaging them instead would weigh a 4-level head a third
    of a softmax head's cross-entropy beside it. multilabel: binary cross-entropy averaged over
    labels as well, the usual multi-label convention, so its scale does not grow with the label set.
    """
    if head.kind == "softmax":
        return nn.functional.cross_entropy(logits, target.long(), weight=class_weight)
    if head.kind == "multilabel":
        return nn.functional.binary_cross_entropy_with_logits(logits, target.float())
    per_threshold = nn.functional.binary_cross_entropy_with_logits(
        logits, ordinal_targets(target.long(), head.output_size), reduction="none"
    )
    return per_threshold.sum(dim=-1).mean()


def decode(head: Head, logits: torch.Tensor) -> torch.Tensor:
    """Class indices (softmax, ordinal) or a 0/1 matrix (multilabel) from a head's logits."""
    if head.kind == "softmax":
        return logits.argmax(dim=-1)
    if head.kind == "multilabel":
        return (torch.sigmoid(logits) > 0.5).long()
    return ordinal_predictions(logits)
