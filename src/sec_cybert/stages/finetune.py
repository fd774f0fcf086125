"""The fine-tuning stage: paragraph classifiers with one or more heads on the pretrained encoder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.core.components import Document, ReadReport
from sec_cybert.core.context import StageContext, StageOutcome
from sec_cybert.core.distributed import is_main_process
from sec_cybert.corpus.sources import OnBadRecord, existing_path, read_jsonl_documents
from sec_cybert.errors import ConfigError, DataError
from sec_cybert.stages.heads import Head
from sec_cybert.stages.predictions import item_key, write_predictions
from sec_cybert.stages.training import Training, valid_stage_name

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from sec_cybert.planning.plan import PlanContext, StagePlan

log = structlog.get_logger(__name__)


def _optional_existing(instance, attribute, value):
    if value is not None:
        existing_path(instance, attribute, value)


def _finetune_training() -> Training:
    return Training(
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        num_train_epochs=5,
        learning_rate=3e-5,
        weight_decay=0.01,
        warmup_ratio=0.1,
        save_strategy="epoch",
        save_total_limit=1,
    )


@attrs.frozen
class FineTuneStage:
    """Fine-tune the incoming encoder with ``heads`` on labeled JSONL; evaluate on a holdout.

    Each record is ``{"text": ..., "<head field>": <label>, ...}``. The best checkpoint (by
    ``metric_for_best_model`` on ``eval_file``) is kept; final metrics come from
    ``holdout_file`` when given, else from ``eval_file``.
    """

    train_file: Path = attrs.field(converter=Path, validator=existing_path)
    heads: tuple[Head, ...] = attrs.field(converter=tuple, validator=v.min_len(1))
    eval_file: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path), validator=_optional_existing
    )
    holdout_file: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path), validator=_optional_existing
    )
    name: str = attrs.field(default="finetune", validator=valid_stage_name)
    text_field: str = "text"
    pooling: Literal["cls", "mean", "attention"] = attrs.field(
        default="cls", validator=v.in_(("cls", "mean", "attention"))
    )
    max_length: int = attrs.field(default=512, validator=[v.instance_of(int), v.ge(8)])
    dropout: float = attrs.field(default=0.1, validator=[v.ge(0), v.lt(1)])
    metric_for_best_model: str | None = None
    training: Training = attrs.field(factory=_finetune_training)
    on_bad_record: OnBadRecord = attrs.field(default="raise", validator=v.in_(("raise", "skip")))

    #: It trains heads on a variant; the Pipeline runs it on the last one, and on each in an ablation.
    produces_variant: ClassVar[bool] = False

    def __attrs_post_init__(self) -> None:
        names = [h.name for h in self.heads]
        if len(set(names)) != len(names):
            raise ConfigError(f"head names must be unique, got {names}")
        if self.training.fsdp:
            raise ConfigError(
                "training.fsdp is for MLM stages (DAPT, TAPT): a fine-tune saves its encoder and heads "
                "from the main process, which holds only its shard under FSDP; set fsdp: false (DDP)"
            )
        if self.metric_for_best_model and self.metric_for_best_model not in self.scalar_metric_names():
            raise ConfigError(
                f"metric_for_best_model {self.metric_for_best_model!r} is not a metric of these heads; "
                f"choose one of {', '.join(self.scalar_metric_names())}"
            )

    @classmethod
    def sec_cybert(cls, train_file: Path | str, **overrides: Any) -> FineTuneStage:
        """The SEC-cyBERT task: 7-class content category (softmax) + 4-level specificity (CORAL)."""
        from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS

        heads = (
            Head(name="category", labels=CATEGORIES, kind="softmax"),
            Head(name="specificity", labels=SPECIFICITY_LEVELS, kind="coral"),
        )
        return cls(train_file=train_file, **{"heads": heads, **overrides})

    def scalar_metric_names(self) -> list[str]:
        names = []
        for head in self.heads:
            if head.kind == "multilabel":
                names += [f"{head.name}_macro_f1", f"{head.name}_micro_f1", f"{head.name}_subset_accuracy"]
            else:
                names += [f"{head.name}_accuracy", f"{head.name}_macro_f1"]
                names += [f"{head.name}_qwk", f"{head.name}_mae"] if head.is_ordinal else []
        return names

    def output_dir(self, context: StageContext) -> Path:
        return Path(context.run_dir) / f"{self.name}-{context.tag}"

    # --- data -----------------------------------------------------------------------------
    def data_files(self) -> list[Path]:
        """The labeled files, which the host fingerprints to notice a change after training."""
        return [p for p in (self.train_file, self.eval_file, self.holdout_file) if p is not None]

    def labeled_documents(self) -> dict[str, list[Document]]:
        """The texts of each labeled file by split (``train``, ``eval``, ``holdout``), for the
        contamination check. Read as training reads them; unusable records are left to ``run``,
        which counts or refuses them."""
        files = {"train": self.train_file, "eval": self.eval_file, "holdout": self.holdout_file}
        return {
            split: list(
                read_jsonl_documents(
                    [path], ReadReport(), text_field=self.text_field, id_field="id", min_chars=1, on_bad_record="skip"
                )
            )
            for split, path in files.items()
            if path is not None
        }

    def read_labeled(self, path: Path, report: ReadReport) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {"text": [], "item": [], **{f"labels_{h.name}": [] for h in self.heads}}
        indices = {h.name: {label: i for i, label in enumerate(h.labels)} for h in self.heads}
        documents = read_jsonl_documents(
            [path],
            report,
            text_field=self.text_field,
            id_field="id",
            min_chars=1,
            on_bad_record=self.on_bad_record,
        )
        for document in documents:
            encoded = {}
            for head in self.heads:
                problem, value = _encode_label(
                    head, document.metadata.get(head.source_field), indices[head.name]
                )
                if problem:
                    where = f"{path} record {document.id}"
                    if self.on_bad_record == "raise":
                        raise DataError(
                            f"{where}: {head.source_field} {problem}; allowed: {', '.join(head.labels)}. "
                            "Fix the label, add it to the head's labels, or set on_bad_record: skip"
                        )
                    report.kept -= 1
                    report.skip(f"{head.source_field} {problem}", where)
                    break
                encoded[head.name] = value
            else:
                columns["text"].append(document.text)
                columns["item"].append(item_key(document))
                for name, value in encoded.items():
                    columns[f"labels_{name}"].append(value)
        if not columns["text"]:
            raise DataError(f"{path} holds no usable labeled records ({dict(report.skipped)} skipped)")
        return columns

    def _dataset(
        self, path: Path, tokenizer: PreTrainedTokenizerBase, report: ReadReport
    ) -> tuple[Any, dict[str, int], list[dict[str, Any]]]:
        """The tokenized split, how many of its texts ``max_length`` cut (and by how many tokens),
        and each row's id and groups (:func:`~sec_cybert.stages.predictions.item_key`)."""
        import datasets

        from sec_cybert.datapath.chunking import count_truncated_tokens

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            encoded = tokenizer(batch["text"], truncation=True, max_length=self.max_length)
            lengths = [len(ids) for ids in encoded["input_ids"]]
            return {
                **encoded,
                "tokens_truncated": count_truncated_tokens(batch["text"], lengths, tokenizer, self.max_length),
            }

        columns = self.read_labeled(path, report)
        items = columns.pop("item")
        dataset = datasets.Dataset.from_dict(columns).map(
            tokenize, batched=True, remove_columns=["text"], desc=f"tokenizing {path.name}"
        )
        cut = [n for n in dataset["tokens_truncated"] if n]
        if cut:
            log.warning("texts truncated", file=str(path), texts=len(cut), tokens=sum(cut), max_length=self.max_length)
        truncated = {"documents": len(cut), "tokens": int(sum(cut))}
        return dataset.remove_columns(["tokens_truncated"]), truncated, items

    def class_weights(self, train: Any) -> dict[str, list[float]]:
        """Balanced weights n / (k * n_c); a class absent from training gets weight 1 and a warning."""
        weights = {}
        for head in self.heads:
            if head.kind != "softmax" or head.class_weights != "balanced":
                continue
            counts = Counter(train[f"labels_{head.name}"])
            total, k = sum(counts.values()), len(head.labels)
            missing = [head.labels[i] for i in range(k) if counts[i] == 0]
            if missing:
                log.warning("classes absent from training data", head=head.name, classes=missing)
            weights[head.name] = [total / (k * counts[i]) if counts[i] else 1.0 for i in range(k)]
        return weights

    # --- run --------------------------------------------------------------------------------
    def run(self, context: StageContext) -> StageOutcome:
        from transformers import DataCollatorWithPadding

        from sec_cybert.stages.loading import load_tokenizer
        from sec_cybert.stages.trainer import checkpoint_dir, run_trainer

        out = context.output_dir

        tokenizer = load_tokenizer(context.init_from)
        reports = {"train": ReadReport(), "eval": ReadReport(), "holdout": ReadReport()}
        truncated: dict[str, dict[str, int]] = {}
        splits: dict[str, Any] = {}
        items: dict[str, list[dict[str, Any]]] = {}
        for name, path in (("train", self.train_file), ("eval", self.eval_file), ("holdout", self.holdout_file)):
            if path is not None:
                splits[name], truncated[name], items[name] = self._dataset(path, tokenizer, reports[name])
        train, evaluation, holdout = (splits.get(name) for name in ("train", "eval", "holdout"))

        runtime = self.training.runtime(context.hardware)
        model = self.build_model(context.init_from, runtime, seed=context.seed, train=train)
        best_metric = self.metric_for_best_model or f"{self.heads[0].name}_macro_f1"
        select_best = evaluation is not None and self.training.save_strategy != "no"
        args = self.training.trainer_arguments(
            checkpoint_dir(context),
            runtime,
            seed=context.seed,
            has_eval=evaluation is not None,
            label_names=[f"labels_{h.name}" for h in self.heads],
            load_best_model_at_end=select_best,
            metric_for_best_model=f"eval_{best_metric}" if select_best else None,
            greater_is_better=None if not select_best else not best_metric.endswith("_mae"),
        )
        run = run_trainer(
            context,
            training=self.training,
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=evaluation,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=self._trainer_metrics,
        )
        final_split, final_set = ("holdout", holdout) if holdout is not None else ("eval", evaluation)
        trainer, train_output = run.trainer, run.output
        metrics: dict[str, Any] = {
            "train_loss": train_output.training_loss,
            "global_step": train_output.global_step,
        }
        if final_set is not None:
            prediction = trainer.predict(final_set)
            metrics.update(evaluated_on=final_split, examples=len(final_set))
            metrics.update(self._metrics(prediction.predictions, prediction.label_ids, detailed=True))
        # Per-item predictions of the scored splits, for the ablation's paired statistics and
        # error analysis: eval gets a prediction pass of its own (small), on every rank since
        # predict gathers across processes.
        scored = {final_split: prediction} if final_set is not None else {}
        if holdout is not None and evaluation is not None:
            scored["eval"] = trainer.predict(evaluation)
        if is_main_process():
            model.save(out, tokenizer)
            for name, output in scored.items():
                write_predictions(
                    out, name, self.heads, items[name], _as_tuple(output.predictions), _as_tuple(output.label_ids)
                )
        report = {name: {**r.as_dict(), "truncated": truncated.get(name)} for name, r in reports.items()}
        report |= {"runtime": attrs.asdict(runtime), "world_size": args.world_size, **run.report()}
        if context.contamination is not None:
            report["contamination"] = dict(context.contamination)
        return StageOutcome(metrics=metrics, report=report)

    def plan(self, planning: PlanContext) -> StagePlan:
        """Examples and steps per run; it runs once per variant and seed in an ablation."""
        from sec_cybert.planning.plan import StagePlan, warmup_steps

        report = ReadReport()
        train = self.read_labeled(self.train_file, report)
        validation = self.read_labeled(self.eval_file, ReadReport()) if self.eval_file else {"text": []}
        steps = self.training.optimizer_steps(len(train["text"]), planning.world_size)
        notes = (f"records skipped: {dict(report.skipped)}",) if report.total_skipped else ()
        return StagePlan(
            stage=self.name,
            documents=len(train["text"]),
            tokens=None,
            sequences_train=len(train["text"]),
            sequences_validation=len(validation["text"]),
            optimizer_steps=steps,
            warmup_steps=warmup_steps(self.training.warmup_ratio, steps),
            sequences_per_step=self.training.effective_batch_size * planning.world_size,
            tokens_per_step=None,
            estimated_seconds=None,
            notes=notes + ("runs once per variant and seed in an ablation",),
            model_dtype=self.training.model_dtype,
        )

    def ablation_metrics(self) -> tuple[str, ...]:
        """Each head's macro F1 (and QWK for ordinal heads) as columns, its per-class F1, and the
        classes the evaluation split lacks (macro F1 averages the classes present)."""
        columns = []
        for head in self.heads:
            columns += [f"{head.name}_macro_f1"] + ([f"{head.name}_qwk"] if head.is_ordinal else [])
        details = [
            f"{head.name}_{suffix}" for head in self.heads for suffix in ("per_class_f1", "absent_classes", "collapsed_to")
        ]
        return (*columns, *details)

    def build_model(self, init_from: str, runtime: Any, *, seed: int, train: Any) -> Any:
        """The encoder from ``init_from`` and freshly initialised heads: the same ``seed``, the same weights.

        Seeded here because ``Trainer(...)`` seeds the process only in its ``__init__``, after the
        model exists: heads built before it drew from whatever torch's RNG held (the previous
        stage's training, another seed of the ablation), so one seed gave different heads.
        ``transformers.set_seed`` is the Trainer's own seeding (random, numpy, torch, CUDA), so the
        seed means what it means in ``TrainingArguments``; the Trainer seeds again for dropout and
        data order. Cheaper than ``model_init``, which the Trainer would call twice (``__init__``
        and ``train``), loading the encoder twice.
        """
        from transformers import AutoModel, set_seed

        from sec_cybert.stages.classifier import MultiHeadClassifier
        from sec_cybert.stages.loading import load_pretrained

        set_seed(seed)  # encoder weights the checkpoint lacks start random: seeded too
        encoder = load_pretrained(
            AutoModel,
            init_from,
            attn_implementation=runtime.attn_implementation,
            dtype=self.training.load_dtype(),
        )
        # Again, so the heads are the same draw for every variant of the ablation, whatever
        # loading its encoder consumed: variants then differ by their encoder alone.
        set_seed(seed)
        return MultiHeadClassifier(
            encoder,
            self.heads,
            pooling=self.pooling,
            dropout=self.dropout,
            class_weights=self.class_weights(train),
        )

    def _metrics(self, predictions: Any, label_ids: Any, *, detailed: bool) -> dict[str, Any]:
        logits, truths = _as_tuple(predictions), _as_tuple(label_ids)
        import numpy as np

        from sec_cybert.stages.metrics import all_head_metrics

        return all_head_metrics(
            self.heads,
            tuple(np.asarray(x) for x in logits),
            tuple(np.asarray(t) for t in truths),
            detailed=detailed,
        )

    def _trainer_metrics(self, prediction: Any) -> dict[str, float]:
        return self._metrics(prediction.predictions, prediction.label_ids, detailed=False)


def _as_tuple(outputs: Any) -> tuple[Any, ...]:
    """The Trainer returns one array for a single head and a tuple for several."""
    return outputs if isinstance(outputs, tuple) else (outputs,)


def _encode_label(head: Head, value: Any, index: dict[str, int]) -> tuple[str | None, Any]:
    """(problem, encoded): a label index, or a 0/1 vector for multilabel heads."""
    if value is None:
        return "is missing", None
    if head.kind == "multilabel":
        values = value if isinstance(value, list) else [value]
        unknown = [x for x in values if str(x) not in index]
        if unknown:
            return f"has labels {unknown} outside the label set", None
        vector = [0.0] * len(head.labels)
        for x in values:
            vector[index[str(x)]] = 1.0
        return None, vector
    if str(value) not in index:
        return f"{value!r} is not in the label set", None
    return None, index[str(value)]
