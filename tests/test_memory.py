"""The step-memory estimate against a measured step, the micro-batch search, and what plan and an
out-of-memory error say with them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from sec_cybert.errors import HardwareError
from sec_cybert.planning.fitting import largest_fitting_batch, measure_step_memory
from sec_cybert.planning.memory import GIB, estimate_step_memory
from sec_cybert.stages.autobatch import MicroBatchFit, fit_micro_batch
from sec_cybert.testing import tiny_modernbert_config

#: (hidden, layers, heads, intermediate, vocabulary): a tiny shape, and one with four layers
#: (both layer kinds, global and local) and a vocabulary big enough for the head to matter.
TINY = (64, 2, 2, 128, 1000)
SMALL = (128, 4, 4, 320, 2000)


def _config(shape, seq_len, *, sparse=False, attn="sdpa", dropout=0.0):
    hidden, layers, heads, inner, vocab = shape
    return tiny_modernbert_config(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inner,
        max_position_embeddings=max(seq_len, 512),
        local_attention=128,
        sparse_prediction=sparse,
        embedding_dropout=dropout,
        attention_dropout=dropout,
        mlp_dropout=dropout,
        bos_token_id=2,
        eos_token_id=1,
        cls_token_id=2,
        sep_token_id=1,
        attn_implementation=attn,
    )


def _measure_and_estimate(
    shape, batch, seq_len, *, checkpointing, sparse, attn="sdpa", autocast=None, padded=False, dropout=0.0
):
    torch.manual_seed(0)
    config = _config(shape, seq_len, sparse=sparse, attn=attn, dropout=dropout)
    model = ModernBertForMaskedLM(config).train()
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(10, config.vocab_size, (batch, seq_len), generator=generator)
    attention = torch.ones_like(ids)
    if padded:
        attention[0, seq_len // 2 :] = 0
    targets = (torch.rand(batch, seq_len, generator=generator) < 0.3) & (attention == 1)
    labels = torch.where(targets, ids, torch.full_like(ids, -100))
    measured = measure_step_memory(
        model, {"input_ids": ids, "attention_mask": attention, "labels": labels}, autocast_dtype=autocast
    )
    estimate = estimate_step_memory(
        config,
        seq_len=seq_len,
        micro_batch=batch,
        autocast_dtype=autocast,
        attn_implementation=attn,
        gradient_checkpointing=checkpointing,
        sparse_prediction=sparse,
        mask_probability=float(targets.float().mean()),
        padded=padded,
        optimizer="adamw_torch",
        device="cpu",
    )
    return measured, estimate


#: The four-layer shape at 512 tokens is the slowest to measure: the fast lane leaves it out.
CASES = [
    pytest.param(shape, batch, seq_len, checkpointing, sparse, marks=[pytest.mark.slow] if shape == SMALL and seq_len == 512 else [])
    for shape, sizes in ((TINY, [(2, 128), (4, 256), (2, 512)]), (SMALL, [(2, 128), (2, 512)]))
    for batch, seq_len in sizes
    for checkpointing in (False, True)
    for sparse in (False, True)
]


@pytest.mark.parametrize(("shape", "batch", "seq_len", "checkpointing", "sparse"), CASES)
def test_the_estimate_is_within_ten_percent_of_a_measured_step(shape, batch, seq_len, checkpointing, sparse):
    # Measured: MemTracker's peak over a real fp32 forward, backward (gradients of an earlier
    # micro-batch resident) and AdamW step on the CPU. Observed: within 5 %.
    measured, estimate = _measure_and_estimate(
        shape, batch, seq_len, checkpointing=checkpointing, sparse=sparse
    )
    assert estimate.overhead == 0 and estimate.total == estimate.peak  # no CUDA context on a CPU
    assert estimate.peak == pytest.approx(measured, rel=0.10), (estimate.describe(), measured)


@pytest.mark.slow  # seven steps of the four-layer shape at 512 tokens
@pytest.mark.parametrize(
    ("settings", "tolerance"),
    [
        ({"checkpointing": False, "sparse": True, "autocast": "bfloat16"}, 0.10),
        ({"checkpointing": True, "sparse": True, "autocast": "bfloat16"}, 0.10),
        ({"checkpointing": True, "sparse": False, "padded": True}, 0.10),
        # Eager attention's [B, heads, L, L] scores and their gradients: counted less exactly.
        ({"checkpointing": True, "sparse": True, "attn": "eager"}, 0.15),
        ({"checkpointing": False, "sparse": True, "attn": "eager", "padded": True}, 0.15),
        # Dropout keeps its masks; with attention dropout a CPU's SDPA scores all L x L pairs.
        ({"checkpointing": False, "sparse": True, "dropout": 0.1}, 0.10),
        ({"checkpointing": True, "sparse": True, "dropout": 0.1}, 0.10),
    ],
)
def test_autocast_padding_dropout_and_eager_attention_are_counted(settings, tolerance):
    measured, estimate = _measure_and_estimate(SMALL, 2, 512, **settings)
    assert estimate.peak == pytest.approx(measured, rel=tolerance), (estimate.describe(), measured)


def _large():
    # ModernBERT-large's shape (what the reference's DAPT trained), from a config only.
    return ModernBertConfig(
        vocab_size=50368,
        hidden_size=1024,
        num_hidden_layers=28,
        num_attention_heads=16,
        intermediate_size=2624,
        max_position_embeddings=8192,
        local_attention=128,
        global_attn_every_n_layers=3,
    )


DAPT = {
    "seq_len": 8192,
    "micro_batch": 4,
    "autocast_dtype": "bfloat16",
    "attn_implementation": "flash_attention_2",
    "gradient_checkpointing": True,
    "sparse_prediction": True,
    "mask_probability": 0.30,
    "optimizer": "adamw_torch_fused",
}


def test_the_estimate_grows_with_batch_and_length_and_each_saver_lowers_its_part():
    config = _large()
    totals = [estimate_step_memory(config, **{**DAPT, "micro_batch": b}).peak for b in (1, 2, 4, 8)]
    assert totals == sorted(totals) and len(set(totals)) == 4
    totals = [estimate_step_memory(config, **{**DAPT, "seq_len": n}).peak for n in (512, 1024, 4096, 8192)]
    assert totals == sorted(totals) and len(set(totals)) == 4
    base = estimate_step_memory(config, **DAPT)
    dense = estimate_step_memory(config, **{**DAPT, "sparse_prediction": False})
    unchecked = estimate_step_memory(config, **{**DAPT, "gradient_checkpointing": False})
    assert dense.head > 3 * base.head  # [all tokens x V] against [the 30 % masked x V]
    assert unchecked.activations > 5 * base.activations  # 28 layers' saved tensors against their inputs
    assert (base.weights, base.gradients, base.optimizer) == (
        base.parameters * 4,
        base.parameters * 4,
        base.parameters * 8,
    )
    bf16 = estimate_step_memory(config, **{**DAPT, "weight_dtype": "bfloat16"})
    assert bf16.weights * 2 == base.weights and bf16.optimizer * 2 == base.optimizer


def test_the_reference_dapt_step_fits_a_24_gb_card_and_docs_show_its_figure():
    # The reference trained ModernBERT-large at 8192 x 4 with checkpointing on a 3090 (24 GB).
    estimate = estimate_step_memory(_large(), **DAPT)
    assert 10 * GIB < estimate.peak < estimate.total < 24 * GIB
    assert estimate.phase == "head backward"
    docs = (Path(__file__).parents[1] / "docs" / "configs.md").read_text()
    assert estimate.describe(24.0) in docs  # the figure the Memory section shows is current


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {
            "norm_bias": True,
            "mlp_bias": True,
            "attention_bias": True,
            "classifier_bias": True,
            "tie_word_embeddings": False,
        },
    ],
)
def test_modernberts_parameters_are_counted_as_a_model_built_from_the_config_has_them(variant):
    from sec_cybert.planning.model_shape import built_parameter_counts, modernbert_parameter_counts

    config = _config(TINY, 128)
    for key, value in variant.items():
        setattr(config, key, value)
    for head in ("mlm", "pooled"):
        built = built_parameter_counts(config.to_json_string(use_diff=False), "modernbert", head)
        assert modernbert_parameter_counts(config, head) == built


def test_a_generic_architecture_is_estimated_and_says_it_is_rougher():
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
    )
    estimate = estimate_step_memory(config, seq_len=128, micro_batch=2, sparse_prediction=True)
    assert estimate.peak > 0 and any("rougher" in note for note in estimate.notes)
    assert any("no sparse head" in note for note in estimate.notes)


# -- the micro-batch search -----------------------------------------------------------------------


def _fits_up_to(limit, calls):
    def try_step(b):
        calls.append(b)
        if b > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {b} GiB.")

    return try_step


def test_the_search_takes_the_largest_divisor_that_fits_and_keeps_the_effective_batch():
    calls, released = [], []
    fit = fit_micro_batch(
        _fits_up_to(5, calls), effective_batch=32, start=16, release=lambda: released.append(1)
    )
    assert calls == [16, 8, 4] and len(released) == 3  # memory freed after every try
    assert fit == MicroBatchFit(4, 8, ((16, False), (8, False), (4, True)))
    assert fit.micro_batch * fit.gradient_accumulation_steps == 32
    assert fit.as_dict()["tried"][0] == {"micro_batch": 16, "fits": False}
    # 24 = 12 x 2 = 8 x 3 = 6 x 4: no power of two needed, no divisor above the start tried.
    calls = []
    fit = fit_micro_batch(_fits_up_to(7, calls), effective_batch=24, start=10)
    assert calls == [8, 6] and (fit.micro_batch, fit.gradient_accumulation_steps) == (6, 4)


def test_the_search_fails_with_the_numbers_when_not_even_one_row_fits():
    with pytest.raises(
        HardwareError, match=r"not even a micro-batch of 1 fits .*needs 9 GiB.*gradient_checkpointing"
    ):
        fit_micro_batch(
            _fits_up_to(0, []), effective_batch=4, start=4, describe=lambda b: f"needs {9 * b} GiB"
        )


def test_the_search_starts_from_the_largest_batch_the_estimate_fits():
    estimates = {b: SimpleNamespace(total=b * GIB) for b in range(1, 33)}
    assert largest_fitting_batch(estimates.__getitem__, 32, 10 * GIB) == 8
    assert largest_fitting_batch(estimates.__getitem__, 24, 10 * GIB) == 8
    assert largest_fitting_batch(estimates.__getitem__, 32, 0.5 * GIB) == 1  # none fits: a real step decides
    config = _large()
    start = largest_fitting_batch(
        lambda b: estimate_step_memory(config, **{**DAPT, "micro_batch": b}), 32, 24 * GIB
    )
    assert start == 4  # the reference's micro-batch, on its card


def test_auto_micro_batch_does_nothing_on_a_cpu():
    from sec_cybert.stages.autobatch import fit_run_micro_batch

    args = SimpleNamespace(
        device=torch.device("cpu"), per_device_train_batch_size=4, gradient_accumulation_steps=8
    )
    assert fit_run_micro_batch(None, None, args, None, None) is None
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 8)


def test_the_run_search_steps_the_real_model_down_to_the_batch_that_fits():
    # The CUDA path's search, on a CPU: an out-of-memory error injected above 2 rows.
    import datasets

    from sec_cybert.stages.autobatch import search_micro_batch

    config = _config(TINY, 64, sparse=True)
    model = ModernBertForMaskedLM(config)
    tried = []

    def out_of_memory_above_two(module, args, kwargs):
        tried.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory.")

    model.register_forward_pre_hook(out_of_memory_above_two, with_kwargs=True)

    class Collate:
        masker = SimpleNamespace(probability=0.5)

        def __call__(self, rows):
            ids = torch.tensor([row["input_ids"] for row in rows])
            labels = ids.clone()
            labels[:, ::2] = -100
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    rows = datasets.Dataset.from_dict({"input_ids": [[5 + i % 50] * (32 + i) for i in range(10)]})
    args = SimpleNamespace(
        device=torch.device("cpu"),
        per_device_train_batch_size=1,
        gradient_accumulation_steps=8,
        bf16=False,
        fp16=False,
        optim="adamw_torch",
        activation_checkpointing=False,
        activation_checkpointing_kwargs=None,
    )
    fit = search_micro_batch(None, model, args, rows, Collate(), budget_bytes=GIB)
    assert (fit.micro_batch, fit.gradient_accumulation_steps) == (2, 4)
    assert fit.tried == ((8, False), (4, False), (2, True))  # the estimate's start: all 8 fit 1 GiB
    assert tried == [8, 4, 2, 2]  # a fitting size runs twice: the second with gradients resident
    assert all(p.grad is None for p in model.parameters())  # released after every try
    assert args.per_device_train_batch_size == 1  # the caller sets what was found


def test_a_resumed_run_keeps_its_checkpoints_micro_batch(tmp_path):
    from sec_cybert.stages.autobatch import _checkpoint_micro_batch

    (tmp_path / "trainer_state.json").write_text(json.dumps({"train_batch_size": 2}))
    assert _checkpoint_micro_batch(tmp_path) == 2
    assert _checkpoint_micro_batch(tmp_path / "missing") is None and _checkpoint_micro_batch(None) is None


# -- plan and the out-of-memory error -------------------------------------------------------------


def test_plan_prints_the_estimate_for_every_trainer_stage(tiny_corpus, plugin_manager):
    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.host.planner import plan_pipeline
    from sec_cybert.testing import tiny_pipeline_config

    plan = plan_pipeline(
        load_run_config(tiny_pipeline_config(tiny_corpus), plugin_manager=plugin_manager).pipeline
    )
    assert [stage.memory.shape.head for stage in plan.stages] == ["mlm", "mlm", "pooled"]
    dapt, tapt, _ = plan.stages
    assert (dapt.memory.shape.padded, tapt.memory.shape.padded) == (
        False,
        True,
    )  # blocks are full, paragraphs padded
    assert dapt.memory.shape.sparse_prediction and dapt.memory.shape.device == "cpu"
    assert plan.to_text().count("  peak memory per device    ≈ ") == 3
    assert plan.warnings == []
    assert json.loads(json.dumps(plan.as_dict()))["stages"][0]["memory"]["total"] == dapt.memory.total


def _dapt_stage(**training):
    from sec_cybert.datapath.chunking import ConcatChunker
    from sec_cybert.datapath.masking import TokenMasker
    from sec_cybert.stages.training import Training

    return SimpleNamespace(
        chunker=ConcatChunker(seq_len=8192),
        masker=TokenMasker(probability=0.30),
        sparse_prediction=False,
        training=Training(gradient_checkpointing=False, **training),
    )


def test_a_step_beyond_the_profiles_memory_is_a_warning_naming_the_settings_to_change():
    from sec_cybert.core.hardware import rtx3090_profile
    from sec_cybert.planning.plan import Plan, StagePlan, degenerate_problems, with_step_memory

    profile = rtx3090_profile()
    planned = with_step_memory(StagePlan(stage="dapt"), _dapt_stage(), _large(), profile)
    assert planned.memory.total > 24 * GIB
    problem = planned.memory_problem
    assert (
        problem.startswith("dapt: one training step needs ≈ ") and "more than the profile's 24 GiB" in problem
    )
    for fix in (
        "per_device_train_batch_size: 1 with gradient_accumulation_steps: 32",
        "gradient_checkpointing: true",
        "sparse_prediction: true",
        "auto_micro_batch: true",
    ):
        assert fix in problem, fix
    plan = Plan(
        hardware="rtx3090",
        world_size=1,
        tokens_per_second=None,
        throughput_source=None,
        stages=(planned,),
        memory_gib=24.0,
    )
    assert degenerate_problems(plan) == [problem]
    assert f"warning: {problem}" in plan.to_text() and "of the profile's 24 GiB" in plan.to_text()
    # With the reference's savers on, it fits, and nothing is said.
    fitting = _dapt_stage()
    fitting = SimpleNamespace(**{**vars(fitting), "sparse_prediction": True})
    fitting.training = type(fitting.training)(gradient_checkpointing=True)
    assert with_step_memory(StagePlan(stage="dapt"), fitting, _large(), profile).memory_problem is None
    # auto_micro_batch plans the micro-batch its search will start from.
    auto = with_step_memory(StagePlan(stage="dapt"), _dapt_stage(auto_micro_batch=True), _large(), profile)
    assert auto.memory_problem is None and auto.memory.shape.micro_batch == 1
    assert any("auto_micro_batch: starts from 1 per device x 32 accumulation" in n for n in auto.notes)


def test_an_out_of_memory_error_in_training_is_one_paragraph_naming_the_numbers(
    tmp_path, plugin_manager, monkeypatch
):
    from transformers import Trainer

    from sec_cybert.host.pipeline import load_run_config
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    config = tiny_pipeline_config(write_tiny_corpus(tmp_path / "corpus"), finetune=False)
    config["stages"] = [config["stages"][0]]
    config["stages"][0]["training"].update(auto_micro_batch=True)  # on a CPU: a log line, no search

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.69 GiB of which "
            "1.02 GiB is free. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF"
        )

    monkeypatch.setattr(Trainer, "training_step", out_of_memory)
    pipeline = load_run_config(config, plugin_manager=plugin_manager).pipeline
    with pytest.raises(HardwareError) as caught:
        pipeline.run(tmp_path / "run")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        "dapt ran out of memory: one training step (micro-batch 8 x 64 tokens"
    )
    for part in (
        "float32 weights",
        "gradient checkpointing off",
        "sparse head on",
        "the machine's memory",
        "Tried to allocate 2.00 GiB",
        "of which 1.02 GiB is free",
        "the preflight estimate is ≈ ",
        "per_device_train_batch_size (now 8)",
        "gradient_accumulation_steps (now 1)",
        "set gradient_checkpointing: true, bf16: true, or shorten the sequences",
    ):
        assert part in message, part
    # What is already on (the sparse head) is not offered, nor torch's advice on its allocator.
    assert "sparse_prediction" not in message and "PYTORCH_CUDA_ALLOC_CONF" not in message
