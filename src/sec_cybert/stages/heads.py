"""Head specifications: what each classification head predicts and how it is modelled.

The torch modules that implement them live in :mod:`sec_cybert.stages.classifier`, so that
reading a config does not import torch.
"""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import validators as v

HeadKind = Literal["softmax", "coral", "thresholds", "multilabel"]
ORDINAL_KINDS = ("coral", "thresholds")
Pooling = Literal["cls", "mean", "attention"]


def _unique_labels(instance, attribute, value: tuple[str, ...]) -> None:
    if len(value) < 2:
        raise ValueError(f"needs at least 2 labels, got {list(value)}")
    if len(set(value)) != len(value):
        raise ValueError(f"labels must be unique, got {list(value)}")


@attrs.frozen
class Head:
    """One prediction target: which JSONL field holds it, its labels, and how it is modelled.

    ``softmax``: one of N classes (optionally class-weighted). ``coral``: ordinal, N-1 rank
    thresholds sharing one weight vector (Cao et al., 2020), labels listed lowest first.
    ``thresholds``: ordinal with N-1 independent binary heads. ``multilabel``: any subset of
    the labels (the field holds a list).

    The model trains on the sum of ``loss_weight`` x each head's loss, a mean over examples:
    cross-entropy for softmax, the thresholds' binary cross-entropies *summed* for the ordinal
    kinds (as Cao et al.), binary cross-entropy averaged over labels for multilabel
    (:func:`sec_cybert.stages.classifier.head_loss`).
    """

    name: str
    labels: tuple[str, ...] = attrs.field(converter=tuple, validator=_unique_labels)
    field: str | None = None
    kind: HeadKind = attrs.field(
        default="softmax", validator=v.in_(("softmax", "coral", "thresholds", "multilabel"))
    )
    class_weights: Literal["none", "balanced"] = attrs.field(
        default="none", validator=v.in_(("none", "balanced"))
    )
    loss_weight: float = attrs.field(default=1.0, validator=v.gt(0))

    @property
    def source_field(self) -> str:
        return self.field or self.name

    @property
    def is_ordinal(self) -> bool:
        return self.kind in ORDINAL_KINDS

    @property
    def output_size(self) -> int:
        return len(self.labels) - 1 if self.is_ordinal else len(self.labels)
