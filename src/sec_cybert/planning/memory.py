"""Memory that is planned, not discovered: the peak of one training step, before it runs.

Method: an analytic model, checked against a measurement
--------------------------------------------------------
:func:`estimate_step_memory` counts, from the model's config, the bytes each tensor of one
training step holds: weights, gradients, AdamW's two moments, every tensor autograd saves for
the backward pass, and the short-lived ones around the peak. The count of saved tensors mirrors
ModernBERT's forward in transformers 5 op by op (``Wqkv``, the rotary embedding, the attention
kernel, the GeGLU ``Wi``/``Wo``, the norms, the MLM head and its cross-entropy), for the
attention implementation, autocast, gradient checkpointing and the sparse head in use.
``tests/test_memory.py`` checks it against the peak that
``torch.distributed._tools.mem_tracker.MemTracker`` measures for a real step on the CPU.

Why analytic, and not a traced measurement under ``FakeTensorMode`` (which MemTracker does
accept, and which needs no memory)? Tried in torch 2.13: (1) the sparse head selects the masked
tokens with a boolean index, an output shape that depends on data, which fake tensors refuse;
(2) transformers decides from the attention mask's *values* whether to build a 4D mask, so a
fake run takes another path than the real one; (3) the peak that matters is a CUDA one, with
flash-attention and bf16 autocast, which a CPU machine planning a GPU run cannot trace; and a
traced step of the large model costs seconds each time ``plan`` or the micro-batch search asks.
The analytic count costs microseconds and says where the memory goes.

The peak is the largest of four moments of a step (``MemoryEstimate.phase``):

* ``forward``: the end of the forward pass, as the loss is taken (autocast still holds its cast
  copies of the weights, and the logits exist next to their log-softmax);
* ``head backward``: the cross-entropy's backward, which holds three ``[tokens x vocab]`` fp32
  tensors (the saved log-softmax, its gradient and the logits' gradient) on top of every saved
  activation;
* ``layer backward``: the last encoder layer's backward (with checkpointing: its recomputed
  activations, on top of every layer's saved input);
* ``optimizer step``: weights, gradients and moments, with the optimizer's temporaries.

Gradients are counted as resident during the backward pass: true from a run's second
micro-batch on whenever ``gradient_accumulation_steps > 1`` (they accumulate), an upper bound
by up to the gradients' size otherwise. Non-ModernBERT architectures get a generic transformer
count (``MemoryEstimate.notes`` says so): rougher, as their layers differ (dropout masks, no
GLU, DeBERTa's relative-position attention).

On CUDA the allocator and the CUDA context take memory the tensors do not:
``overhead`` adds the context and a fraction of the peak for the allocator's fragmentation, so
``total`` is what must fit the card while ``peak`` is what ``torch.cuda.max_memory_allocated``
reports. :func:`~sec_cybert.stages.autobatch.fit_micro_batch` finds the micro-batch that fits by
real steps, starting from the largest the estimate allows (:func:`~sec_cybert.planning.fitting.largest_fitting_batch`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.errors import ConfigError
from sec_cybert.planning.model_shape import LOCAL, arch_of, parameter_counts

log = structlog.get_logger(__name__)

__all__ = [
    "MemoryEstimate",
    "StepShape",
    "estimate_step_memory",
]

GIB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Moments kept per parameter, in the parameter's dtype (torch's AdamW keeps both in it).
OPTIMIZER_STATES = {"adamw": 2, "adamw_torch": 2, "adamw_torch_fused": 2, "adamw_torch_foreach": 2, "sgd": 0}
#: The CUDA context and the kernels' handles: memory the card loses before the first tensor
#: (~0.3-0.6 GiB with cuBLAS and cuDNN loaded), which ``max_memory_allocated`` never shows.
CUDA_CONTEXT_BYTES = GIB // 2
#: The caching allocator's share beyond the tensors (reserved - allocated at the peak): blocks
#: split by earlier, differently sized tensors. 10 % is typical of a steady training loop.
ALLOCATOR_SLACK = 0.10



def dtype_name(value: Any) -> str:
    name = str(value).removeprefix("torch.")
    if name not in DTYPE_BYTES:
        raise ConfigError(f"dtype {value!r} has no memory model; use one of {', '.join(DTYPE_BYTES)}")
    return name


def optional_dtype_name(value: Any) -> str | None:
    return None if value is None else dtype_name(value)


@attrs.frozen
class StepShape:
    """The settings of one training step that decide its memory (see :func:`estimate_step_memory`)."""

    seq_len: int = attrs.field(validator=[v.instance_of(int), v.ge(1)])
    micro_batch: int = attrs.field(validator=[v.instance_of(int), v.ge(1)])
    weight_dtype: str = attrs.field(default="float32", converter=dtype_name)
    autocast_dtype: str | None = attrs.field(default=None, converter=optional_dtype_name)
    attn_implementation: str = attrs.field(
        default="sdpa", validator=v.in_(("sdpa", "eager", "flash_attention_2"))
    )
    gradient_checkpointing: bool = False
    sparse_prediction: bool = False
    mask_probability: float = attrs.field(default=0.15, validator=[v.ge(0), v.le(1)])
    optimizer: str = "adamw"
    #: The batch carries padding or packed-document boundaries: SDPA then gets a 4D mask at
    #: every layer (and the local layers' mask at any length), not only at the local layers.
    padded: bool = False
    #: ``mlm``: the MLM head and its [tokens x vocabulary] logits; ``pooled``: a classifier on
    #: pooled states (a fine-tune), whose head is negligible.
    head: Literal["mlm", "pooled"] = attrs.field(default="mlm", validator=v.in_(("mlm", "pooled")))
    device: Literal["cuda", "cpu"] = attrs.field(default="cuda", validator=v.in_(("cuda", "cpu")))

    def describe(self) -> str:
        precision = f"{self.autocast_dtype} autocast" if self.autocast_dtype else "no autocast"
        return (
            f"micro-batch {self.micro_batch} x {self.seq_len:,} tokens, {self.weight_dtype} weights, "
            f"{precision}, {self.attn_implementation}, gradient checkpointing "
            f"{'on' if self.gradient_checkpointing else 'off'}, "
            + (
                f"sparse head {'on' if self.sparse_prediction else 'off'}"
                if self.head == "mlm"
                else "pooled head"
            )
        )


@attrs.frozen
class MemoryEstimate:
    """Bytes per device at the peak of one training step, by what holds them.

    ``weights + gradients + optimizer + activations + head + workspace`` is ``peak``: the
    tensors alive at the peak (compare ``torch.cuda.max_memory_allocated``). ``activations``
    are the tensors saved for the backward pass (with checkpointing: each layer's input and one
    layer's recomputation); ``head`` the MLM head's ``[tokens x vocabulary]`` logits, their
    log-softmax and gradients; ``workspace`` autocast's copies of the weights and the
    gradients in flight. ``overhead`` (CUDA only) is the context and the allocator's slack:
    ``total = peak + overhead`` is what must fit the device. ``phase`` names the moment of the
    peak (see the module docstring).
    """

    shape: StepShape
    weights: int
    gradients: int
    optimizer: int
    activations: int
    head: int
    workspace: int
    overhead: int
    phase: str
    parameters: int
    notes: tuple[str, ...] = ()
    peak: int = attrs.field(init=False)
    total: int = attrs.field(init=False)

    @peak.default
    def _peak(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.head + self.workspace

    @total.default
    def _total(self) -> int:
        return self.peak + self.overhead

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def describe(self, device_gib: float | None = None, whose: str = "the profile's") -> str:
        """``≈ X GiB [of the profile's M GiB] (weights a, grads b, AdamW c, activations d, ...)``,
        in MiB for a model under 1 GiB: one line for ``plan``."""
        unit, scale = ("GiB", GIB) if self.total >= GIB else ("MiB", 2**20)

        def size(n: int) -> str:
            value = n / scale
            return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 0.05 else f"{value:.2g}"

        adam = self.shape.optimizer.startswith("adamw")
        parts = [
            f"weights {size(self.weights)}",
            f"grads {size(self.gradients)}",
            f"{'AdamW' if adam else 'optimizer'} {size(self.optimizer)}",
            f"activations {size(self.activations)}",
        ]
        if self.head:
            parts.append(f"logits {size(self.head)}")
        if self.workspace:
            parts.append(f"workspace {size(self.workspace)}")
        if self.overhead:
            parts.append(f"CUDA context+allocator {size(self.overhead)}")
        of = f" of {whose} {device_gib:.3g} GiB" if device_gib else ""
        return f"≈ {size(self.total)} {unit}{of} ({', '.join(parts)} {unit}), peak at the {self.phase}"


# -- the count --------------------------------------------------------------------------------


def estimate_step_memory(
    model_config: Any,
    *,
    seq_len: int,
    micro_batch: int,
    weight_dtype: Any = "float32",
    autocast_dtype: Any = None,
    attn_implementation: str = "sdpa",
    gradient_checkpointing: bool = False,
    sparse_prediction: bool = False,
    mask_probability: float = 0.15,
    optimizer: str = "adamw",
    padded: bool = False,
    head: Literal["mlm", "pooled"] = "mlm",
    device: Literal["cuda", "cpu"] = "cuda",
) -> MemoryEstimate:
    """The peak memory of one training step (forward, backward, AdamW step) per device.

    ``model_config`` is the transformers config (``AutoConfig.from_pretrained(checkpoint)``: no
    weights needed). ``weight_dtype``/``autocast_dtype`` are names (``"float32"``,
    ``"bfloat16"``) or torch dtypes; ``autocast_dtype=None`` trains without autocast.
    ``mask_probability`` is the share of tokens that carry a target (what a sparse head decodes).
    See the module docstring for the method and :class:`MemoryEstimate` for the parts.
    """
    shape = StepShape(
        seq_len=seq_len,
        micro_batch=micro_batch,
        weight_dtype=weight_dtype,
        autocast_dtype=autocast_dtype,
        attn_implementation=attn_implementation,
        gradient_checkpointing=gradient_checkpointing,
        sparse_prediction=sparse_prediction,
        mask_probability=mask_probability,
        optimizer=optimizer,
        padded=padded,
        head=head,
        device=device,
    )
    return estimate_for_shape(model_config, shape)


def estimate_for_shape(model_config: Any, shape: StepShape) -> MemoryEstimate:
    """:func:`estimate_step_memory` for a :class:`StepShape` (to vary one setting of another)."""
    arch = arch_of(model_config)
    notes: list[str] = []
    if not arch.modernbert:
        notes.append(
            f"generic transformer estimate for model type {getattr(model_config, 'model_type', '?')!r}: "
            "rougher than ModernBERT's (layers counted as BERT-like, without dropout masks)"
        )
    P, P_linear, largest, P_head_linear = parameter_counts(model_config, shape.head)
    states = OPTIMIZER_STATES.get(shape.optimizer.removesuffix("_8bit"))
    if states is None:
        states = 2
        notes.append(f"optimizer {shape.optimizer!r} counted as AdamW (two moments per parameter)")

    w = DTYPE_BYTES[shape.weight_dtype]
    autocast = shape.autocast_dtype is not None
    # a: matmul inputs and outputs (the autocast dtype, else the weights'); r: the residual
    # stream and norms, which autocast runs in float32.
    a = DTYPE_BYTES[shape.autocast_dtype] if autocast else w
    r = 4 if autocast else w
    casts = autocast and shape.autocast_dtype != shape.weight_dtype  # autocast copies the weights

    B, L = shape.micro_batch, shape.seq_len
    N = B * L
    h, inner, heads, V = arch.hidden, arch.intermediate, arch.heads, arch.vocab
    sparse = shape.sparse_prediction and arch.sparse_capable and shape.head == "mlm"
    if shape.sparse_prediction and not sparse and shape.head == "mlm":
        notes.append("sparse_prediction: this architecture has no sparse head; counted dense")
    T = math.ceil(shape.mask_probability * N) if sparse else N  # rows the MLM head decodes
    # Attention that scores all [L x L] pairs: eager, and SDPA on a CPU with attention dropout
    # (its fused CPU kernel has none, so it falls back to the unfused math).
    unfused = shape.attn_implementation == "eager" or (
        shape.attn_implementation == "sdpa" and shape.device == "cpu" and arch.attention_dropout > 0
    )
    # A dropout mask: boolean from CUDA's fused kernel, a scaled tensor of the input's dtype on a CPU.
    drop_mask = 1 if shape.device == "cuda" else a

    # -- saved for the backward pass, per encoder layer ------------------------------------
    def has_mask(kind: str) -> bool:
        if shape.attn_implementation == "flash_attention_2":
            return False  # flash takes the window (and varlen boundaries) as arguments
        if kind == LOCAL:
            return shape.padded or shape.seq_len >= arch.half_window
        return shape.padded or shape.attn_implementation == "eager"

    def layer_saved(index: int) -> int:
        kind = arch.layer_types[index]
        # The layer input x (saved by the attention norm), the norm's output (by Wqkv), the
        # fused qkv (kept whole by the value view the kernel saves), rotated q and k, the
        # attention output (by Wo: the kernel already lays it out as [B, L, h]), the residual
        # after attention (by the MLP norm) and that norm's output (by Wi). Layer 0 has no
        # attention norm: its input is saved only as Wqkv's input.
        saved = N * h * (2 * r + 8 * a) - (N * h * r if index == 0 else 0)
        if not arch.modernbert:
            saved += 2 * N * h * a  # a BERT layer's extra norm/dropout outputs (rough)
        # GeGLU: Wi's output [N, 2I] (kept by GELU and the gate), GELU's output, their product.
        saved += (4 if arch.modernbert else 2) * a * N * inner
        saved += (8 if index == 0 else 16) * N  # the norms' mean and rstd, float32
        # Dropout (off in ModernBERT's configs) keeps the mask of what it dropped.
        saved += (N * inner if arch.mlp_dropout else 0) * drop_mask + (
            N * h if arch.attention_dropout else 0
        ) * drop_mask
        if arch.attention_dropout and unfused:
            saved += B * heads * L * L * (drop_mask + a)  # the dropped attention weights and their mask
        if unfused:
            # The float32 softmax of the [B, heads, L, L] scores, and its cast for the matmul.
            saved += B * heads * L * L * (4 + (a if a != 4 else 0))
        else:
            saved += 4 * heads * N  # the kernel's logsumexp
            if has_mask(kind):
                saved += B * L * L * a  # SDPA turns the boolean mask into an additive one, per layer
        return saved

    per_layer = [layer_saved(i) for i in range(arch.layers)]
    body_all = sum(per_layer)
    inputs_kept = arch.layers * N * h * r  # checkpointing keeps each layer's input only
    body = inputs_kept if shape.gradient_checkpointing else body_all
    shared_masks = sum(B * L * L for kind in set(arch.layer_types) if has_mask(kind))  # the bool masks
    batch = 3 * 8 * N  # input_ids, attention_mask, labels (int64)
    embeddings = N * h * w + 8 * N + 8 * N  # the lookup's output (by the norm), its stats, the ids
    embeddings += N * h * drop_mask if arch.embedding_dropout else 0  # its dropout mask
    final_norm = N * h * r + 8 * N

    # -- the head: four [T, h] activations, and the [T, V] logits in float32 ----------------
    if shape.head == "mlm":
        head_hidden = 4 * T * h * a + 8 * T + (8 * T + N if sparse else 0)
        log_softmax = 4 * T * V  # the loss upcasts the logits; its log-softmax is saved
        logits_forward = a * T * V + (4 * T * V if a != 4 else 0)  # the logits, and their float32 copy
        logits_backward = 2 * 4 * T * V  # the gradients of the log-softmax and of the logits
    else:
        head_hidden, log_softmax, logits_forward, logits_backward = 2 * B * h * a, 0, 0, 0

    weights, gradients, optimizer = P * w, P * w, states * P * w
    static = weights + gradients + optimizer
    saved_common = embeddings + final_norm + head_hidden + shared_masks + batch
    layer_casts = (P_linear - P_head_linear) * a if casts else 0
    one_layer_casts = (layer_casts // arch.layers) if casts else 0
    head_casts = P_head_linear * a if casts else 0
    # A layer's backward at its peak, the larger of two moments. In the MLP: the gradient
    # arriving along the residual, Wo's input gradient and the two gradients of the gated
    # product (Wo's input, no longer saved, is freed). In the attention, with the MLP's saved
    # tensors freed: eager's float32 gradients of the softmax and of the [B, heads, L, L]
    # scores, or a kernel's gradients of q, k and v.
    mlp_grads = N * h * (r + a) + 2 * a * N * inner
    attention_grads = (
        N * h * (r + 2 * a)
        - (4 * a * N * inner + N * h * (a + r))
        + (8 * B * heads * L * L if unfused else 3 * a * N * h)
        # By the softmax's backward, the attention dropout's saved weights and mask are freed.
        - (B * heads * L * L * (drop_mask + a) if unfused and arch.attention_dropout else 0)
    )
    layer_grads = max(mlp_grads, attention_grads)
    biggest_layer = max(per_layer)

    moments: dict[str, tuple[int, int, int]] = {}  # phase -> (activations, head, workspace)
    moments["forward"] = (body + saved_common, log_softmax + logits_forward, layer_casts + head_casts)
    moments["head backward"] = (
        body + saved_common,
        log_softmax + logits_backward,
        (head_casts + (0 if shape.gradient_checkpointing else layer_casts)),
    )
    if shape.gradient_checkpointing:
        layer_moment = (
            inputs_kept + biggest_layer + embeddings + shared_masks + batch,
            0,
            one_layer_casts + layer_grads,
        )
    else:
        layer_moment = (body_all + embeddings + shared_masks + batch, 0, layer_casts + layer_grads)
    moments["layer backward"] = layer_moment
    if shape.optimizer.endswith("_fused") or states == 0:
        step_temp = 0
    elif shape.device == "cuda":
        step_temp = P * w  # foreach AdamW: one parameter-sized temporary (the denominators)
    else:
        step_temp = 2 * largest * w  # the per-tensor loop: a couple of temporaries of one tensor
    moments["optimizer step"] = (0, 0, step_temp)
    phase, (activations, head, workspace) = max(moments.items(), key=lambda kv: sum(kv[1]))
    peak = static + activations + head + workspace
    overhead = CUDA_CONTEXT_BYTES + int(ALLOCATOR_SLACK * peak) if shape.device == "cuda" else 0
    return MemoryEstimate(
        shape=shape,
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=activations,
        head=head,
        workspace=workspace,
        overhead=overhead,
        phase=phase,
        parameters=P,
        notes=tuple(notes),
    )
