"""The kinds of composable component, as Protocols, and the records that flow between them.

Data flows one way::

    CorpusSource --Documents--> Chunker --token blocks--> Masker --batches--> Stage --checkpoint--> Stage

with a HardwareProfile setting how stages run and Trackers recording them. Each Protocol names
everything the host reads of its kind. Implementations are attrs classes that take typed
arguments; they satisfy these Protocols structurally and never inherit behaviour from one another.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import attrs
import structlog

if TYPE_CHECKING:
    import datasets
    import torch
    from transformers import PreTrainedTokenizerBase

    from sec_cybert.core.context import StageContext, StageOutcome, StageResult

log = structlog.get_logger(__name__)


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
    first few locations are kept so a user can find and fix them. ``kept`` is the host's count
    of the documents it received (:meth:`count_received`); a source need not keep it, and one
    that does is checked against it.
    """

    kept: int = 0
    skipped: Counter[str] = attrs.field(factory=Counter)
    examples: list[str] = attrs.field(factory=list)
    max_examples: ClassVar[int] = 20

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{where}: {reason}")

    def count_received(self, received: int, *, source: str, excluded: int = 0) -> None:
        """Set ``kept`` to the ``received`` documents the host got from ``source``, less the
        ``excluded`` ones it left out itself. A source that counted (``kept`` not 0) and got
        another number is warned about: a count that disagrees with the documents means a bug
        in the source."""
        if self.kept and self.kept != received:
            log.warning(
                "a corpus source's own count of its documents is not what it yielded; the yielded count is kept",
                source=source,
                source_count=self.kept,
                received=received,
            )
        self.kept = received - excluded

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "skipped": dict(self.skipped), "examples": list(self.examples)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadReport:
        """The report :meth:`as_dict` wrote (a tokenization cache entry keeps one)."""
        return cls(kept=data["kept"], skipped=Counter(data["skipped"]), examples=list(data["examples"]))


@runtime_checkable
class CorpusSource(Protocol):
    """Yields documents. Bad records are either raised as DataError or counted in ``report``
    (``report.skip``); ``report.kept`` is the host's to count.

    An MLM stage fingerprints the content of the source's files: those its optional ``files()``
    returns, else its ``path`` attribute (a file or a directory), else none.
    """

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

    An MLM stage keeps ``tokenize``'s output on disk (docs/corpus.md, the tokenization cache),
    keyed by, among others, the chunker's class and its optional ``tokenize_settings()``: the
    settings ``tokenize`` depends on, as a JSON-able dict. Without that method every setting of
    an attrs chunker is in the key (safe; a setting only ``group`` reads then re-tokenizes).
    A chunker from a third-party package adds that package's version to the key.
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
    These attributes are everything the host reads: ``resolve_runtime`` the first seven and
    ``dataloader_num_workers``, ``plan`` the memory and throughput ones. ``auto`` detection
    also calls ``matches_device(name)`` when a profile has it (optional).
    """

    name: str
    device: str  # "cpu" or "cuda"
    bf16: bool
    tf32: bool
    torch_compile: bool
    attn_implementation: str  # "flash_attention_2", "sdpa" or "eager"
    optim: str
    dataloader_num_workers: int
    memory_gib: float | None  # per device, for plan's memory check; None when unknown
    tokens_per_second: float | None  # measured or declared training throughput, for `plan`
    throughput_source: str | None  # where tokens_per_second comes from, printed beside it

    def problems(self) -> list[str]:
        """Why this profile cannot run on this machine; empty when it can."""
        ...


@runtime_checkable
class Stage(Protocol):
    """One step of a pipeline: it reads ``context.init_from`` and writes ``context.output_dir``.

    The host (the Pipeline) owns the lifecycle around ``run``: it resolves the stage's config,
    fingerprints it with its input, claims and prepares ``output_dir(context)``, reuses a
    finished result, runs the contamination check, writes ``stage.json``, waits for every rank,
    records the lineage and tells the trackers. ``run`` does the stage's own work only and
    returns its metrics and report (:class:`~sec_cybert.core.context.StageOutcome`).

    Required:

    * ``name``: names the stage in records and, usually, its directory;
    * ``produces_variant``: ``True`` when the output directory is a new pretrained encoder
      (``AutoModelForMaskedLM.from_pretrained`` loads it) that later stages start from and the
      ablation compares (DAPT, TAPT); ``False`` for a stage that uses a variant (a fine-tune),
      which the Pipeline runs on the last variant, and on every variant in an ablation.
      Variant-producing stages come first in a pipeline;
    * ``output_dir(context)`` and ``run(context)``.

    Optional capabilities, each called by the host when present (see docs/plugins.md):

    * ``pretraining_documents(report) -> Iterator[Document]``: the texts it would train on. The
      contamination check compares them with the fine-tune eval and holdout texts, what it
      excludes reaches ``run`` as ``context.exclusions``, and a tokenizer-training encoder
      (``tiny-modernbert``) learns its vocabulary from them;
    * ``labeled_documents() -> Mapping[str, Sequence[Document]]``: its labeled texts by split
      (``train``, ``eval``, ``holdout``). Eval and holdout texts are kept out of pretraining, and
      the splits are checked against each other; ``train`` feeds a tokenizer when no stage has
      pretraining documents;
    * ``plan(planning: PlanContext) -> StagePlan``: what ``sec-cybert plan`` prints for it,
      computed by the stage's own data path;
    * ``ablation_metrics() -> Sequence[str]``: the metrics of its result the ablation table shows
      (scalars as columns, mappings such as per-class F1 averaged per key over seeds);
    * ``data_files() -> Sequence[Path]``: the files (or directories) it reads. The host records
      their content digest, with that of the input checkpoint's weights, and notices when either
      changed since the stage ran (``on_input_change``: refuse, or redo).
    """

    name: str
    produces_variant: bool

    def run(self, context: StageContext) -> StageOutcome: ...

    def output_dir(self, context: StageContext) -> Path: ...


#: The optional Stage methods the host looks for, in the order the docs list them.
STAGE_CAPABILITIES = ("pretraining_documents", "labeled_documents", "plan", "ablation_metrics", "data_files")


def stage_problems(stage: Any) -> list[str]:
    """What ``stage`` lacks of the Stage protocol, one line each; empty when it conforms."""
    problems = []
    if not isinstance(getattr(stage, "name", None), str):
        problems.append("a string attribute `name`")
    if not isinstance(getattr(stage, "produces_variant", None), bool):
        problems.append("a bool attribute `produces_variant` (True for DAPT/TAPT-like stages, False for fine-tunes)")
    for method in ("run", "output_dir", *STAGE_CAPABILITIES):
        value = getattr(stage, method, None)
        if method in ("run", "output_dir") and not callable(value):
            problems.append(f"a method `{method}(context)`")
        elif value is not None and not callable(value):
            problems.append(f"`{method}` must be a method, not {type(value).__name__}")
    return problems


@runtime_checkable
class Tracker(Protocol):
    """Records a run somewhere (W&B, MLflow, a file): the host calls it, it never raises into training.

    Built from ``tracking: [{kind: NAME, ...params}]``; one instance serves a whole pipeline run
    (its stages, and the ablation after it). ``context`` says which stage, variant, tag and run
    directory an event belongs to. A tracker that cannot start (a missing package, no
    credentials) should raise in its constructor, before anything trains; an error inside
    ``log`` is logged once and the tracker is dropped for the rest of the stage.
    """

    def start_stage(self, context: StageContext, config: Mapping[str, Any]) -> None:
        """A stage is about to run (not called for a finished stage that is reused)."""
        ...

    def log(self, context: StageContext, event: str, step: int, metrics: Mapping[str, float]) -> None:
        """A training event: ``log``, ``evaluate`` or ``checkpoint`` (see ``on_train_event``)."""
        ...

    def finish_stage(self, context: StageContext, result: StageResult | None) -> None:
        """The stage ended: its result, or ``None`` when it failed."""
        ...

    def finish_run(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        """The pipeline finished (``summary``: ``lineage``), or an ablation did (``ablation``)."""
        ...
