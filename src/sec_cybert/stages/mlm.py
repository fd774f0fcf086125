"""The masked-language-modelling stage: DAPT and TAPT are two configurations of it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import structlog
from attrs import validators as v

from sec_cybert.core.components import Chunker, CorpusSource, Document, Masker, ReadReport
from sec_cybert.core.context import FINGERPRINT, StageContext, StageOutcome
from sec_cybert.core.distributed import is_main_process
from sec_cybert.corpus.dedup import Deduplication
from sec_cybert.errors import ConfigError, DataError
from sec_cybert.stages.training import Training, perplexity, valid_stage_name

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from sec_cybert.corpus.contamination import Exclusions
    from sec_cybert.planning.plan import PlanContext, StagePlan
    from sec_cybert.plugins.registry import Registry

log = structlog.get_logger(__name__)


def _eval_loss_at(log_history: list[dict[str, Any]], step: int) -> float | None:
    """The eval loss the Trainer logged at ``step``, if its last evaluation was there."""
    evaluations = [entry for entry in log_history if "eval_loss" in entry]
    if evaluations and evaluations[-1].get("step") == step:
        return float(evaluations[-1]["eval_loss"])
    return None


@attrs.frozen
class MLMStage:
    """Continue masked-language-model pretraining of the incoming checkpoint on a corpus.

    The stage reads ``corpus`` (less what the contamination check excludes), finds copies
    (``deduplicate``), tokenizes with ``chunker``, keeps the newest documents up to
    ``max_tokens``, holds out ``validation_split`` of those *documents* (whole duplicate clusters,
    and whole ``validation_group_field`` groups such as companies when set), groups each side
    into blocks, and trains with ``masker`` deciding the targets. It writes the final model and
    tokenizer to ``<run_dir>/<name>/`` and Trainer checkpoints under ``<run_dir>/<name>/checkpoints/``.
    """

    corpus: CorpusSource
    chunker: Chunker
    masker: Masker
    name: str = attrs.field(default="mlm", validator=valid_stage_name)
    training: Training = attrs.field(factory=Training)
    max_tokens: int | None = attrs.field(default=None, validator=v.optional([v.instance_of(int), v.ge(1)]))
    validation_split: float = attrs.field(default=0.02, validator=[v.ge(0), v.lt(1)])
    #: Metadata key whose value is held out whole (``cik``: validation filings come from
    #: companies training never saw). By default each document is its own group.
    validation_group_field: str | None = None
    deduplicate: Deduplication = attrs.field(factory=Deduplication)
    #: Decode only the masked positions where the architecture can (ModernBERT's
    #: ``sparse_prediction``): the same loss, without a [tokens x vocabulary] logits tensor for
    #: the 70 % of positions that carry no target (benchmarks/RESULTS.md has the figures).
    sparse_prediction: bool = True
    #: Keep the deduplicated, tokenized documents on disk, keyed by the documents read, the
    #: tokenizer, the chunker and the deduplication settings, so ``plan``, the run, other ranks
    #: and a resumed run tokenize once (``$SEC_CYBERT_CACHE/tokenized``; docs/corpus.md).
    #: Not part of the stage's fingerprint: the cache changes how fast, never what, it trains.
    cache_tokenization: bool = attrs.field(default=True, metadata={FINGERPRINT: False})

    #: Its output is a new encoder variant (+DAPT, +DAPT+TAPT) that later stages start from.
    produces_variant: ClassVar[bool] = True

    def __attrs_post_init__(self) -> None:
        if self.masker.needs_word_ids and not self.chunker.provides_word_ids:
            raise ConfigError(
                "masker needs word ids but the chunker does not provide them: use the 'paragraph' "
                "chunker, or 'concat' with word_ids: true"
            )

    # The reference procedure's two configurations, as named constructors.
    @classmethod
    def dapt(cls, corpus: CorpusSource, **overrides: Any) -> MLMStage:
        """DAPT: concatenate-and-chunk at 8192, 30 % token masking, 500M newest tokens, 1 epoch."""
        from sec_cybert.datapath.chunking import ConcatChunker
        from sec_cybert.datapath.masking import TokenMasker

        defaults: dict[str, Any] = {
            "name": "dapt",
            "chunker": ConcatChunker(seq_len=8192),
            "masker": TokenMasker(probability=0.30),
            "max_tokens": 500_000_000,
            "validation_split": 0.02,
            "training": Training(gradient_checkpointing=True),
        }
        return cls(corpus=corpus, **{**defaults, **overrides})

    @classmethod
    def tapt(cls, corpus: CorpusSource, **overrides: Any) -> MLMStage:
        """TAPT: one paragraph per block at 512, 30 % whole-word masking, 5 epochs, batch 32;
        near-duplicate paragraphs (companies repeat their Item 1C text yearly) kept once."""
        from sec_cybert.datapath.chunking import ParagraphChunker
        from sec_cybert.datapath.masking import WholeWordMasker

        defaults: dict[str, Any] = {
            "name": "tapt",
            "chunker": ParagraphChunker(max_length=512),
            "masker": WholeWordMasker(probability=0.30),
            "validation_split": 0.05,
            "deduplicate": Deduplication(mode="near"),
            "training": Training(
                per_device_train_batch_size=32,
                gradient_accumulation_steps=1,
                num_train_epochs=5,
                save_strategy="epoch",
            ),
        }
        return cls(corpus=corpus, **{**defaults, **overrides})

    def output_dir(self, context: StageContext) -> Path:
        return Path(context.run_dir) / self.name

    def data_files(self) -> list[Path]:
        """The corpus's files (its ``files()`` when it has one, else its ``path``): the host
        fingerprints their content, so a corpus changed after this stage trained is noticed."""
        files = getattr(self.corpus, "files", None)
        if callable(files):
            return list(files())
        path = getattr(self.corpus, "path", None)
        return [Path(path)] if path is not None else []

    def pretraining_documents(self, report: ReadReport) -> Iterator[Document]:
        """The documents this stage would pretrain on, before any exclusion (the contamination
        check and a tokenizer-training encoder read them)."""
        return self.corpus.iter_documents(report)

    def prepare_data(
        self,
        tokenizer: PreTrainedTokenizerBase,
        seed: int,
        exclusions: Exclusions | None = None,
        registry: Registry | None = None,
    ) -> tuple[Any, Any, dict[str, Any]]:
        """Read, deduplicate, tokenize, select, split and group: (train blocks, validation blocks or
        None, report). ``plan`` calls this too, so what it reports is what trains. ``registry``
        (the run's) names the plugin versions in the tokenization cache's key."""
        from sec_cybert.corpus.select import newest_first, validation_mask
        from sec_cybert.corpus.token_cache import tokenize_once

        read, documents = ReadReport(), None
        parts, files = self._cache_parts(tokenizer, exclusions, registry=registry)
        if parts is None and self.cache_tokenization:  # a source to read to know its documents
            documents = self._read(read, exclusions)
            parts = self._cache_parts(tokenizer, exclusions, documents, registry=registry)[0]

        def build() -> tuple[Any, dict[str, Any]]:
            nonlocal documents
            documents = documents if documents is not None else self._read(read, exclusions, files)
            tokenized, meta = self._tokenized_documents(documents, tokenizer)
            return tokenized, {**meta, "read": read.as_dict()}

        tokenized, prepared, tokenization = tokenize_once(parts, build)
        if documents is None:  # a hit keyed by the files: what reading them reported then
            read = ReadReport.from_dict(prepared["read"])
        blank, dropped = prepared["blank_documents"], prepared["duplicates"]["dropped"]
        selected, selection = newest_first(tokenized, self.max_tokens)
        if selection.documents_kept == 0:
            raise DataError(
                f"max_tokens={self.max_tokens} is smaller than the newest document, so nothing is "
                "kept; raise max_tokens (or set it to null for the whole corpus)"
            )
        held_out = validation_mask(selected["cluster"], selected["group"], self.validation_split, seed)
        sides = {
            "train": selected.select([i for i, held in enumerate(held_out) if not held]),
            "validation": selected.select([i for i, held in enumerate(held_out) if held]),
        }
        bookkeeping = [c for c in ("text", "id", "filing_date", "group", "cluster") if c in selected.column_names]
        blocks = {
            side: self.chunker.group(rows.remove_columns(bookkeeping)) if len(rows) else None
            for side, rows in sides.items()
        }
        report = {
            "read": read.as_dict(),
            "blank_documents": blank,
            "duplicates": prepared["duplicates"],
            "tokenization": tokenization,
            "selection": selection.as_dict(),
            "truncated": _truncation(selected),
            **{side: _side_report(rows, blocks[side]) for side, rows in sides.items()},
            "train_blocks": len(blocks["train"]),
            "validation_blocks": len(blocks["validation"]) if blocks["validation"] is not None else 0,
        }
        log.info(
            "corpus prepared",
            stage=self.name,
            documents=selection.documents_kept,
            tokens=selection.tokens_kept,
            skipped=read.total_skipped,
            duplicates_dropped=dropped,
            train_blocks=report["train_blocks"],
            validation_blocks=report["validation_blocks"],
        )
        if report["truncated"]["documents"]:
            log.warning("documents truncated", stage=self.name, **report["truncated"])
        return blocks["train"], blocks["validation"], report

    def _read(self, read: ReadReport, exclusions: Exclusions | None, files: Any = None) -> Any:
        """The documents, less the exclusions. With ``files`` (``path, signature`` pairs: the files
        the cache key hashed), a file changed since it was hashed is an error, not a stale entry."""
        from sec_cybert.corpus.dataset import documents_dataset
        from sec_cybert.corpus.token_cache import check_unchanged

        log.info("reading corpus", stage=self.name, source=self.corpus.describe())
        documents = documents_dataset(self.corpus, read, exclusions=exclusions, group_field=self.validation_group_field)
        check_unchanged(files or (), f"the corpus of stage {self.name!r}")
        return documents

    def _cache_parts(
        self,
        tokenizer: PreTrainedTokenizerBase,
        exclusions: Exclusions | None,
        documents: Any = None,
        *,
        registry: Registry | None = None,
    ) -> tuple[dict[str, Any] | None, list[tuple[Path, Any]]]:
        """What the tokenization cache's key hashes, and the files it hashed with their
        signatures (:func:`~sec_cybert.corpus.token_cache.cache_parts`); ``(None, [])`` when it is off."""
        from sec_cybert.core.files import file_signature, files_under
        from sec_cybert.corpus.token_cache import cache_parts

        if not self.cache_tokenization:
            return None, []
        files = [] if documents is not None else [(p, file_signature(p)) for p in files_under(self.data_files())]
        parts = cache_parts(
            source=self.corpus,
            files=[path for path, _ in files],
            documents=documents,
            exclusions=exclusions,
            group_field=self.validation_group_field,
            tokenizer=tokenizer,
            chunker=self.chunker,
            deduplicate=attrs.asdict(self.deduplicate),
            registry=registry,
        )
        return parts, files

    def _tokenized_documents(self, documents: Any, tokenizer: PreTrainedTokenizerBase) -> tuple[Any, dict[str, Any]]:
        """Blank filter, deduplication and the chunker's ``tokenize``: what the tokenization cache
        keeps (without the text), and the counts the stage report takes from it."""
        from sec_cybert.corpus.dataset import text_batch_size
        from sec_cybert.corpus.dedup import duplicate_clusters
        from sec_cybert.corpus.select import iter_column, selection_order

        # A blank text tokenizes to special tokens only: nothing to mask, a loss of 0 or NaN. The
        # blank ones are found in the pass that finds the copies, and both are left out in one
        # selection at the end: a column added to a selection would copy the whole table.
        blank_rows: list[int] = []

        def with_text() -> Iterator[str]:
            for row, text in enumerate(iter_column(documents, "text", batch_size=text_batch_size(documents))):
                if text.strip():
                    yield text
                else:
                    blank_rows.append(row)

        dedup = self.deduplicate
        clusters = duplicate_clusters(
            with_text(),
            dedup.mode,
            threshold=dedup.threshold,
            shingle_size=dedup.shingle_size,
            num_perm=dedup.num_perm,
        )
        blank = len(blank_rows)
        if blank == len(documents):
            raise DataError(
                f"corpus {self.corpus.describe()} holds {blank} documents and every one is blank; "
                "check the text field of the records (text_field) and the corpus build"
            )
        blank_set = set(blank_rows)
        rows = [row for row in range(len(documents)) if row not in blank_set]  # the texts clustered
        cluster = [-1] * len(documents)
        for row, cluster_id in zip(rows, clusters.ids, strict=True):
            cluster[row] = cluster_id
        documents = documents.add_column("cluster", cluster)
        dropped = 0
        if dedup.drop and clusters.count < len(rows):
            # Of copies, keep the one the selection reaches first (newest, then by id), so the
            # order of the shards cannot decide which filing's copy trains.
            dates, ids = (list(iter_column(documents, column)) for column in ("filing_date", "id"))
            kept: dict[int, int] = {}
            for i in selection_order([dates[row] for row in rows], [ids[row] for row in rows]):
                kept.setdefault(clusters.ids[i], i)
            rows = [rows[i] for i in sorted(kept.values())]
            dropped = len(clusters.ids) - clusters.count
        if len(rows) < len(documents):
            documents = documents.select(rows)
        log.info("tokenizing", stage=self.name, documents=len(documents), duplicates_dropped=dropped)
        tokenized = self.chunker.tokenize(documents, tokenizer)
        # The text is read again on every run anyway (the key hashes it); the entry need not keep it.
        if "text" in tokenized.column_names:
            tokenized = tokenized.remove_columns("text")
        duplicates = {"mode": dedup.mode, **clusters.as_dict(), "dropped": dropped}
        return tokenized, {"blank_documents": blank, "duplicates": duplicates}

    def run(self, context: StageContext) -> StageOutcome:
        return self.run_with(context)

    def run_with(self, context: StageContext, *, callbacks: Sequence[Any] = ()) -> StageOutcome:
        """``run``, with extra Trainer callbacks: for a plugin's stage built on this one (see
        docs/plugins.md, which freezes the embeddings for the first steps this way)."""
        from transformers import AutoModelForMaskedLM

        from sec_cybert.datapath.collator import MaskingCollator, premask
        from sec_cybert.datapath.document_attention import DocumentAttention, check_encoder
        from sec_cybert.stages.batchcheck import check_first_batch, describe_masker, run_registry
        from sec_cybert.stages.callbacks import EpochToCollator
        from sec_cybert.stages.loading import load_pretrained, load_tokenizer
        from sec_cybert.stages.trainer import checkpoint_dir, run_trainer

        out = context.output_dir
        tokenizer = load_tokenizer(context.init_from)
        if getattr(self.chunker, "provides_position_ids", False):
            check_encoder(context.init_from)  # before the corpus is read, not after
        train_blocks, validation_blocks, report = self.prepare_data(
            tokenizer, context.seed, context.exclusions, context.registry
        )
        if context.contamination is not None:
            report["contamination"] = dict(context.contamination)
        runtime = self.training.runtime(context.hardware)
        model = load_pretrained(
            AutoModelForMaskedLM,
            context.init_from,
            attn_implementation=runtime.attn_implementation,
            dtype=self.training.load_dtype(),
        )
        if self.sparse_prediction and hasattr(model, "sparse_prediction"):
            model.sparse_prediction = True  # the instance flag: the saved config stays as it was
        # Masks are a function of (seed, epoch, rows): not of torch's global RNG, which the Trainer
        # restores on resume only after the first resumed batches were collated.
        packed = "position_ids" in train_blocks.column_names
        attention = DocumentAttention.from_config(model.config) if packed else None
        collator = MaskingCollator(
            tokenizer=tokenizer,
            masker=self.masker,
            seed=context.seed,
            pad_to_multiple_of=self.training.padding_multiple(runtime),
            attention=attention,
        )
        train_blocks = train_blocks.add_column("row", list(range(len(train_blocks))))
        check_first_batch(
            collator,
            train_blocks,
            model,
            batch_size=self.training.per_device_train_batch_size,
            masker=describe_masker(self.masker, run_registry(context)),
        )
        if validation_blocks is not None:
            validation_blocks = premask(validation_blocks, tokenizer, self.masker, seed=context.seed)
            if is_main_process():
                # Kept, masked, so the ablation scores every variant (base included) on the same targets.
                validation_blocks.save_to_disk(str(out / VALIDATION_SET))
            report["validation_set"] = VALIDATION_SET
        args = self.training.trainer_arguments(
            checkpoint_dir(context), runtime, seed=context.seed, has_eval=validation_blocks is not None
        )
        run = run_trainer(
            context,
            training=self.training,
            model=model,
            args=args,
            train_dataset=train_blocks,
            eval_dataset=validation_blocks,
            data_collator=collator,
            perplexity=True,
            callbacks=[EpochToCollator(collator), *callbacks],
        )
        trainer, train_output = run.trainer, run.output
        metrics: dict[str, Any] = {
            "train_loss": train_output.training_loss,
            "global_step": train_output.global_step,
        }
        if validation_blocks is not None:
            # The Trainer evaluated these very weights at the last step already (when a
            # save/eval point fell there): evaluating again would say the same line twice.
            eval_loss = _eval_loss_at(trainer.state.log_history, train_output.global_step)
            if eval_loss is None:
                eval_loss = trainer.evaluate()["eval_loss"]
            metrics.update(eval_loss=eval_loss, eval_perplexity=perplexity(eval_loss))
        trainer.save_model(str(out))
        if is_main_process():
            tokenizer.save_pretrained(str(out))
        report |= {"runtime": attrs.asdict(runtime), "world_size": args.world_size, **run.report()}
        return StageOutcome(metrics=metrics, report=report)

    def plan(self, planning: PlanContext) -> StagePlan:
        """The run's counts, from the run's own data path (``prepare_data``)."""
        from sec_cybert.planning.plan import StagePlan, warmup_steps

        train, validation, report = self.prepare_data(
            planning.tokenizer, planning.seed, planning.exclusions, planning.registry
        )
        training = self.training
        steps = training.optimizer_steps(len(train), planning.world_size)
        per_step = training.effective_batch_size * planning.world_size
        block = getattr(self.chunker, "seq_len", None) or getattr(self.chunker, "max_length", None)
        profile = planning.profile
        total_tokens = report["selection"]["tokens_kept"] * training.num_train_epochs
        notes = []
        if report["read"]["skipped"]:
            notes.append(f"records skipped: {report['read']['skipped']}")
        if report["duplicates"]["dropped"]:
            notes.append(
                f"copies dropped ({report['duplicates']['mode']} duplicates): {report['duplicates']['dropped']:,}"
            )
        if report["truncated"]["documents"]:
            notes.append(
                f"documents truncated: {report['truncated']['documents']:,} "
                f"({report['truncated']['tokens']:,} tokens cut off)"
            )
        notes.append(
            f"validation holds {report['validation']['documents']:,} whole documents "
            f"({report['validation']['tokens']:,} tokens)"
        )
        if profile.tokens_per_second:
            notes.append(
                "duration scales the profile's throughput; it was measured for one model and sequence length"
            )
        return StagePlan(
            stage=self.name,
            documents=report["selection"]["documents_kept"],
            tokens=report["selection"]["tokens_kept"],
            sequences_train=len(train),
            sequences_validation=len(validation) if validation is not None else 0,
            optimizer_steps=steps,
            warmup_steps=warmup_steps(training.warmup_ratio, steps),
            sequences_per_step=per_step,
            tokens_per_step=per_step * block if block else None,
            estimated_seconds=total_tokens / profile.tokens_per_second if profile.tokens_per_second else None,
            notes=tuple(notes),
            model_dtype=training.model_dtype,
        )

    def ablation_metrics(self) -> tuple[str, ...]:
        """What a variant's row shows of this stage: its MLM loss on its own validation split."""
        return ("eval_loss", "eval_perplexity")


#: The masked validation set a stage keeps in its directory (a ``datasets`` directory).
VALIDATION_SET = "validation-set"


def _side_report(rows: Any, blocks: Any) -> dict[str, int]:
    """Documents, tokens and blocks of one side of the split, counted on what it holds."""
    return {
        "documents": len(rows),
        "tokens": int(sum(rows["n_tokens"])) if len(rows) else 0,
        "blocks": len(blocks) if blocks is not None else 0,
    }


def _truncation(selected: Any) -> dict[str, int]:
    if "tokens_truncated" not in selected.column_names:
        return {"documents": 0, "tokens": 0}
    cut = [n for n in selected["tokens_truncated"] if n]
    return {"documents": len(cut), "tokens": int(sum(cut))}
