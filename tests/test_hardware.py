"""Hardware profiles: detection, and how stage settings resolve against the machine."""

from __future__ import annotations

import pytest

from sec_cybert.core import hardware
from sec_cybert.errors import HardwareError
from sec_cybert.plugins.registry import Registry
from sec_cybert.stages.training import Training


def test_auto_detects_cpu_here(plugin_manager):
    profile = hardware.resolve_profile("auto", Registry.collect(plugin_manager), plugin_manager)
    assert profile.name == "cpu" and profile.device == "cpu"


def test_gpu_profile_on_a_cpu_machine_is_a_clear_error(plugin_manager):
    with pytest.raises(HardwareError, match="'rtx3090' needs a CUDA GPU.*use 'cpu' or 'auto'"):
        hardware.resolve_profile("rtx3090", Registry.collect(plugin_manager), plugin_manager)


def test_reference_settings_downgrade_on_cpu_with_a_reason_each():
    settings = hardware.resolve_runtime(
        hardware.cpu_profile(), bf16=True, tf32=True, attn_implementation="flash_attention_2", optim="adamw_torch_fused"
    )
    assert settings.bf16 is True  # bf16 autocast works on CPUs: honoured
    assert (settings.tf32, settings.attn_implementation, settings.optim) == (False, "sdpa", "adamw_torch")
    assert len(settings.downgrades) == 3
    assert any("flash_attention_2 -> sdpa" in line for line in settings.downgrades)


def test_unset_settings_come_from_the_profile():
    profile = hardware.rtx3090_profile()
    assert (profile.bf16, profile.tf32, profile.torch_compile, profile.attn_implementation) == (True, True, True, "flash_attention_2")
    settings = hardware.resolve_runtime(hardware.cpu_profile())
    assert (settings.bf16, settings.torch_compile, settings.attn_implementation) == (False, False, "sdpa")


def test_profiles_match_device_names():
    assert hardware.rtx3090_profile().matches_device("NVIDIA GeForce RTX 3090")
    assert hardware.h100_profile().matches_device("NVIDIA H100 80GB HBM3")
    assert not hardware.h100_profile().matches_device("NVIDIA GeForce RTX 3090")


def test_reference_throughput_and_step_arithmetic():
    # 4 x 8 sequences of 8192 tokens in ~27 s on the 3090.
    assert hardware.rtx3090_profile().tokens_per_second == pytest.approx(9709, rel=1e-3)
    training = Training(per_device_train_batch_size=4, gradient_accumulation_steps=8)
    assert training.effective_batch_size == 32
    # 500M tokens / 8192 = 61,035 sequences -> 15,259 micro-batches -> 1,908 optimizer steps.
    assert training.optimizer_steps(61_035) == 1908
    assert Training(max_steps=10).optimizer_steps(10**6) == 10


def test_trainer_arguments_carry_the_resolved_settings(tmp_path):
    training = Training(gradient_checkpointing=True, warmup_ratio=0.05, save_strategy="steps", save_steps=10)
    settings = training.runtime(hardware.cpu_profile())
    args = training.trainer_arguments(tmp_path, settings, seed=3, has_eval=True)
    assert args.warmup_steps == 0.05 and args.use_cpu and args.seed == 3
    assert args.eval_strategy == "steps" and args.eval_steps == 10
    assert args.activation_checkpointing is True
    assert args.activation_checkpointing_kwargs == {"use_reentrant": False}


def test_weights_load_in_float32_unless_bfloat16_is_asked_for():
    import torch
    from structlog.testing import capture_logs

    assert Training().load_dtype() is torch.float32
    with capture_logs() as logs:
        assert Training(model_dtype="bfloat16").load_dtype() is torch.bfloat16
    assert logs and "round away" in logs[0]["event"]
