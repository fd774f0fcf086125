"""Training settings shared by every stage, and their translation to the HF Trainer.

We drive ``transformers.Trainer`` rather than a loop of our own: it already does mixed
precision, gradient accumulation, checkpoint/resume, and DDP/FSDP under ``torchrun`` or
``accelerate launch``. Settings left ``None`` come from the hardware profile.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.core.distributed import timeout_seconds
from sec_cybert.core.hardware import ATTN_IMPLEMENTATIONS, RuntimeSettings, resolve_runtime

if TYPE_CHECKING:
    from sec_cybert.core.components import HardwareProfile

log = structlog.get_logger(__name__)

#: Far above any batch that fits a device, far below what would overflow step arithmetic: a
#: value beyond it is a typo (an extra zero, a token count for a batch size).
MAX_BATCH = 1 << 20


def _finite(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")


_positive_int = [v.instance_of(int), v.ge(1)]
_batch = [v.instance_of(int), v.ge(1), v.le(MAX_BATCH)]


def valid_stage_name(instance: Any, attribute: Any, value: str) -> None:
    """A stage's ``name``: it names the stage's output directory, so letters, digits, '-', '_'."""
    if not value or not value.replace("-", "").replace("_", "").isalnum():
        raise ValueError(
            f"must be a short name of letters, digits, '-' or '_' (it names the output directory), not {value!r}"
        )


@attrs.frozen
class Training:
    """Optimisation settings of one stage. Defaults are the reference procedure's DAPT values."""

    per_device_train_batch_size: int = attrs.field(default=4, validator=_batch)
    per_device_eval_batch_size: int | None = attrs.field(default=None, validator=v.optional(_batch))
    gradient_accumulation_steps: int = attrs.field(default=8, validator=_batch)
    num_train_epochs: float = attrs.field(default=1.0, validator=[_finite, v.gt(0)])
    max_steps: int | None = attrs.field(default=None, validator=v.optional(_positive_int))
    learning_rate: float = attrs.field(default=5e-5, validator=[_finite, v.gt(0), v.lt(1)])
    weight_decay: float = attrs.field(default=1e-5, validator=[_finite, v.ge(0)])
    warmup_ratio: float = attrs.field(default=0.05, validator=[v.ge(0), v.lt(1)])
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = attrs.field(default=1.0, validator=[_finite, v.gt(0)])
    gradient_checkpointing: bool = False
    #: On CUDA: before training, replace the micro-batch by the largest that fits the device (the
    #: memory estimate's, confirmed by real steps; sec_cybert.planning.memory) and keep the effective
    #: batch exact through gradient_accumulation_steps. Does nothing on a CPU.
    auto_micro_batch: bool = attrs.field(default=False, validator=v.instance_of(bool))
    bf16: bool | None = None
    tf32: bool | None = None
    torch_compile: bool | None = None
    optim: str | None = None
    attn_implementation: str | None = attrs.field(
        default=None, validator=v.optional(v.in_(ATTN_IMPLEMENTATIONS))
    )
    logging_steps: int = attrs.field(default=50, validator=_positive_int)
    save_strategy: Literal["steps", "epoch", "no"] = attrs.field(
        default="steps", validator=v.in_(("steps", "epoch", "no"))
    )
    save_steps: int = attrs.field(default=1000, validator=_positive_int)
    eval_steps: int | None = attrs.field(default=None, validator=v.optional(_positive_int))
    save_total_limit: int | None = attrs.field(default=3, validator=v.optional(_positive_int))
    dataloader_num_workers: int | None = attrs.field(default=None, validator=v.optional(v.ge(0)))
    #: The dtype the weights are loaded (and kept) in. float32 master weights with bf16 autocast
    #: is the default on purpose: in pure bf16 an AdamW step of lr 5e-5 is below half a unit in
    #: the last place of a typical weight (~0.03 -> ULP ~2.4e-4), so most updates round away.
    #: bfloat16 halves weight and optimizer memory when that is what makes a run fit.
    model_dtype: Literal["float32", "bfloat16"] = attrs.field(
        default="float32", validator=v.in_(("float32", "bfloat16"))
    )
    #: A step whose loss or gradients are not finite stops the stage (naming the step, its rows
    #: and the last good checkpoint), or is skipped (its gradients zeroed) and counted.
    on_nonfinite: Literal["stop", "skip"] = attrs.field(default="stop", validator=v.in_(("stop", "skip")))
    #: Stop when the logged gradient norm (before clipping) exceeds this at
    #: ``grad_norm_alarm_steps`` logging steps in a row; off by default.
    grad_norm_alarm: float | None = attrs.field(default=None, validator=v.optional([_finite, v.gt(0)]))
    grad_norm_alarm_steps: int = attrs.field(default=3, validator=_positive_int)
    #: Batch rows of similar length together (transformers' ``LengthGroupedSampler``, which
    #: measures each row's ``input_ids`` once per dataloader), so a batch of one paragraph per
    #: row pads less: the fallback when packing (chunker ``packed``) is off. Batches stay random
    #: in order but no longer i.i.d. in length; packed rows are all ~max_length: no gain there.
    group_by_length: bool = False
    #: Round each MLM batch's width up to a multiple of this. None: 8 on CUDA (transformers'
    #: advice for tensor cores, and fewer distinct shapes for torch.compile; at most 7 more slots
    #: a row), none on a CPU, where it only adds work. Token masking draws over the padded width, so a CPU and a CUDA run of one seed
    #: mask alike only when this is set explicitly (whole-word masking draws per word: always).
    pad_to_multiple_of: int | None = attrs.field(default=None, validator=v.optional(_positive_int))
    #: Under ``torchrun``/``accelerate launch``: shard the weights, gradients and AdamW moments
    #: over the ranks (FSDP2, through accelerate) instead of replicating them (DDP). The rest is
    #: :meth:`fsdp_arguments` (docs/tutorial.md, "Several GPUs").
    fsdp: bool = attrs.field(default=False, validator=v.instance_of(bool))
    #: Passed to the Trainer's ``fsdp_config`` over our defaults (``version: 2``,
    #: ``state_dict_type: FULL_STATE_DICT``, FSDP's own ``activation_checkpointing`` for
    #: ``gradient_checkpointing``); the layers wrapped default to the model's ``_no_split_modules``
    #: (ModernBERT: ``ModernBertEncoderLayer``), or name them in ``transformer_layer_cls_to_wrap``.
    fsdp_config: dict[str, Any] = attrs.field(factory=dict, validator=v.instance_of(dict), hash=False)

    def fsdp_arguments(self, runtime: RuntimeSettings) -> dict[str, Any]:
        """The Trainer's ``fsdp``/``fsdp_config`` (none without ``fsdp``). Gradient checkpointing
        is FSDP's own then: the Trainer's would gather every layer's weights a second time in
        the backward pass. A full state dict is gathered on save, so the stage's directory loads
        with ``from_pretrained`` as a DDP run's does."""
        if not self.fsdp:
            return {}
        if runtime.device == "cpu":
            from sec_cybert.errors import ConfigError

            # accelerate (1.16) enables FSDP for GPUs and other accelerators only: on CPU processes
            # it drops the plugin without a word and wraps the model in DDP.
            raise ConfigError(
                "training.fsdp needs GPUs: accelerate runs FSDP on accelerators only, and CPU "
                "processes would silently train with DDP instead; set fsdp: false on a CPU"
            )
        config = {
            "version": 2,
            "state_dict_type": "FULL_STATE_DICT",
            "activation_checkpointing": self.gradient_checkpointing,
            **self.fsdp_config,
        }
        return {"fsdp": True, "fsdp_config": config}

    def load_dtype(self) -> Any:
        import torch

        if self.model_dtype == "bfloat16":
            log.warning(
                "weights kept in bfloat16: updates smaller than ~1/256 of a weight round away; "
                "use model_dtype: float32 (bf16 autocast still applies) unless memory forces this"
            )
        return getattr(torch, self.model_dtype)

    def padding_multiple(self, runtime: RuntimeSettings) -> int | None:
        """What the MLM collator rounds a batch's width up to on ``runtime`` (see the field)."""
        if self.pad_to_multiple_of is not None:
            return self.pad_to_multiple_of
        return 8 if runtime.device == "cuda" else None

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def runtime(self, profile: HardwareProfile) -> RuntimeSettings:
        return resolve_runtime(
            profile,
            bf16=self.bf16,
            tf32=self.tf32,
            torch_compile=self.torch_compile,
            attn_implementation=self.attn_implementation,
            optim=self.optim,
        )

    def optimizer_steps(self, train_sequences: int, world_size: int = 1) -> int:
        """Optimizer steps the Trainer will take (what ``plan`` reports)."""
        if self.max_steps:
            return self.max_steps
        batches_per_epoch = math.ceil(train_sequences / (self.per_device_train_batch_size * world_size))
        steps_per_epoch = max(1, math.ceil(batches_per_epoch / self.gradient_accumulation_steps))
        return math.ceil(steps_per_epoch * self.num_train_epochs)

    def trainer_arguments(
        self,
        output_dir: Path,
        runtime: RuntimeSettings,
        *,
        seed: int,
        has_eval: bool,
        **extra: Any,
    ) -> Any:
        from transformers import TrainingArguments

        eval_strategy = self.save_strategy if has_eval else "no"
        return TrainingArguments(
            output_dir=str(output_dir),
            per_device_train_batch_size=self.per_device_train_batch_size,
            per_device_eval_batch_size=self.per_device_eval_batch_size or self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps or -1,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            # transformers v5: a float in [0, 1) here is a ratio of the total steps.
            warmup_steps=self.warmup_ratio,
            lr_scheduler_type=self.lr_scheduler_type,
            max_grad_norm=self.max_grad_norm,
            # transformers v5 renamed gradient_checkpointing; non-reentrant is what torch.compile needs.
            activation_checkpointing=self.gradient_checkpointing and not self.fsdp,
            activation_checkpointing_kwargs=(
                {"use_reentrant": False} if self.gradient_checkpointing and not self.fsdp else None
            ),
            bf16=runtime.bf16,
            tf32=runtime.tf32 if runtime.device == "cuda" else None,
            torch_compile=runtime.torch_compile,
            optim=runtime.optim,
            use_cpu=runtime.device == "cpu",
            logging_steps=self.logging_steps,
            logging_first_step=True,
            save_strategy=self.save_strategy,
            save_steps=self.save_steps,
            eval_strategy=eval_strategy,
            eval_steps=(self.eval_steps or self.save_steps) if eval_strategy == "steps" else None,
            save_total_limit=self.save_total_limit,
            dataloader_num_workers=(
                runtime.dataloader_num_workers
                if self.dataloader_num_workers is None
                else self.dataloader_num_workers
            ),
            dataloader_pin_memory=runtime.device == "cuda",
            # stages.throughput.CountingTrainer counts tokens itself (real and padded slots, and a
            # packed batch's dict attention mask, which the Trainer's non_padding count cannot sum).
            include_num_input_tokens_seen="no",
            remove_unused_columns=False,
            train_sampling_strategy="group_by_length" if self.group_by_length else "random",
            # Every parameter takes part in every step; searching for unused ones costs a DDP pass.
            ddp_find_unused_parameters=False,
            # The process group's timeout, when the Trainer is the first to create it.
            ddp_timeout=timeout_seconds(),
            # Trackers (W&B ...) get our events through the host; the Trainer's own integrations
            # would open runs of their own with the Trainer's arguments as config.
            report_to="none",
            seed=seed,
            disable_tqdm=True,
            **self.fsdp_arguments(runtime),
            **extra,
        )


def perplexity(loss: float) -> float:
    """e^loss: the Trainer's MLM loss is a mean cross-entropy in nats (the reference's 2^loss is wrong)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf
