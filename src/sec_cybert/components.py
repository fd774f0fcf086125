"""The five kinds of composable component, as Protocols, and the records that flow between them.

Data flows one way::

    CorpusSource --Documents--> Chunker --token blocks--> Masker --batches--> Stage --checkpoint--> Stage

Implementations are frozen attrs classes that take typed arguments; they satisfy these
Protocols structurally and never inherit behaviour from one another.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    import datasets
    import torch
    from transformers import PreTrainedTokenizerBase

    from sec_cybert.stages.context import StageContext, StageResult


@attrs.frozen
class Document:
    """One text with its identity and metadata: a filing, a paragraph, a labeled example."""

    id: str
    text: str
    metadata: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.define
class ReadReport:
    """What a source read: records kept, records skipped by reason, and where.

    Sources never drop a record silently: every skip is counted here with its reason, and the
    first few locations are kept so a user can find and fix them.
    """

    kept: int = 0
    skipped: Counter[str] = attrs.field(factory=Counter)
    examples: list[str] = attrs.field(factory=list)
    max_examples: ClassVar[int] = 20

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{where}: {reason}")

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "skipped": dict(self.skipped), "examples": list(self.examples)}


@runtime_checkable
class CorpusSource(Protocol):
    """Yields documents. Bad records are either raised as DataError or counted in ``report``."""

    def iter_documents(self, report: ReadReport) -> Iterator[Document]: ...

    def describe(self) -> str: ...


@runtime_checkable
class Chunker(Protocol):
    """Turns documents into token blocks, in two steps so a token budget can act in between.

    ``tokenize`` maps a ``datasets.Dataset`` with a ``text`` column to one with ``input_ids``
    and ``n_tokens`` (the tokens that will train; and ``word_ids`` -- same length as
    ``input_ids``, -1 for special tokens -- when ``provides_word_ids``). A chunker that truncates
    adds ``tokens_truncated`` (tokens cut off each document), which the stage report and ``plan``
    count. Other columns it adds are kept.

    ``group`` turns tokenized documents into training blocks. It receives a *selection* of the
    tokenized rows (the newest documents within the budget, then the train or the validation
    documents), so it must read the rows it is given -- through ``dataset.iter``,
    ``dataset[column]`` or after ``dataset.flatten_indices()`` -- never ``dataset.data``, the
    underlying Arrow table, which still holds every row.
    """

    provides_word_ids: bool

    def tokenize(
        self, documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase
    ) -> datasets.Dataset: ...

    def group(self, tokenized: datasets.Dataset) -> datasets.Dataset: ...


@runtime_checkable
class Masker(Protocol):
    """Chooses MLM targets in a padded batch. Never masks special or padding tokens.

    Returns ``(input_ids, labels)``: the corrupted inputs and the labels, -100 where no loss is taken.
    """

    needs_word_ids: bool

    def mask(
        self,
        input_ids: torch.Tensor,
        special_tokens_mask: torch.Tensor,
        *,
        mask_token_id: int,
        vocab_size: int,
        word_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class HardwareProfile(Protocol):
    """What a machine can do, and the training settings that suit it.

    Stage settings left unset (``None``) take the profile's value; a setting the device cannot
    honour (bf16 on a GPU without it, flash-attn not installed) is downgraded with one log line.
    """

    name: str
    device: str  # "cpu" or "cuda"
    bf16: bool
    tf32: bool
    torch_compile: bool
    attn_implementation: str  # "flash_attention_2", "sdpa" or "eager"
    optim: str
    memory_gib: float | None
    tokens_per_second: float | None  # measured or declared training throughput, for `plan`

    def problems(self) -> list[str]:
        """Why this profile cannot run on this machine; empty when it can."""
        ...


@runtime_checkable
class Stage(Protocol):
    """One step of a pipeline: reads the previous checkpoint, writes a loadable checkpoint directory.

    ``kind`` is ``"mlm"`` for stages that produce a new pretrained variant (DAPT, TAPT) and
    ``"finetune"`` for stages that train task heads on a variant.
    """

    name: str
    kind: str

    def run(self, context: StageContext) -> StageResult: ...

    def output_dir(self, context: StageContext) -> Path: ...
