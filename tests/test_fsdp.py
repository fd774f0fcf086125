"""FSDP as a stage setting: what reaches the Trainer, where it is refused, and a sharded run.

A two-process FSDP run on CPU is not possible with accelerate 1.16: it enables FSDP only for
GPUs and other accelerators (``AcceleratorState`` sets ``DistributedType.FSDP`` for MULTI_GPU,
MULTI_XPU, ... but not MULTI_CPU), and CPU processes silently fall back to DDP -- which is why a
CPU run with ``fsdp: true`` is refused. The sharded run under torchrun is therefore a
``requires_gpu`` test (one process per GPU, at most two: one GPU shards over a world of one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml

from sec_cybert.core.hardware import RuntimeSettings
from sec_cybert.errors import ConfigError
from sec_cybert.stages.training import Training
from sec_cybert.testing import requires_gpu, tiny_pipeline_config

GPU = RuntimeSettings(
    device="cuda", bf16=False, tf32=False, torch_compile=False, attn_implementation="sdpa", optim="adamw_torch", dataloader_num_workers=0
)
CPU = RuntimeSettings(
    device="cpu", bf16=False, tf32=False, torch_compile=False, attn_implementation="sdpa", optim="adamw_torch", dataloader_num_workers=0
)


def test_fsdp_reaches_the_trainer_as_fsdp2_with_its_own_checkpointing_and_a_full_state_dict(tmp_path):
    training = Training(
        fsdp=True,
        gradient_checkpointing=True,
        fsdp_config={"transformer_layer_cls_to_wrap": ["ModernBertEncoderLayer"], "reshard_after_forward": False},
    )
    args = training.trainer_arguments(tmp_path, GPU, seed=0, has_eval=False)
    plugin = args.fsdp_plugin_args
    assert args.fsdp is True and plugin["fsdp_version"] == 2
    assert plugin["transformer_cls_names_to_wrap"] == "ModernBertEncoderLayer"
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert plugin["state_dict_type"] == "FULL_STATE_DICT"
    assert plugin["reshard_after_forward"] is False  # the user's setting over ours
    # FSDP's activation checkpointing, not the Trainer's (which all-gathers each layer again).
    assert plugin["activation_checkpointing"] is True and args.activation_checkpointing is False

    plain = Training(gradient_checkpointing=True).trainer_arguments(tmp_path, GPU, seed=0, has_eval=False)
    assert not plain.fsdp and plain.fsdp_plugin_args is None and plain.activation_checkpointing is True


def test_fsdp_on_cpu_processes_is_refused_rather_than_run_as_ddp(tmp_path):
    with pytest.raises(ConfigError, match="training.fsdp needs GPUs"):
        Training(fsdp=True).trainer_arguments(tmp_path, CPU, seed=0, has_eval=False)


def test_fsdp_and_its_config_load_from_yaml_and_a_fine_tune_refuses_it(tiny_corpus, plugin_manager):
    from sec_cybert.host.config import unstructure
    from sec_cybert.host.pipeline import load_run_config

    config = tiny_pipeline_config(tiny_corpus)
    config["stages"][0]["training"].update(fsdp=True, fsdp_config={"cpu_ram_efficient_loading": True})
    stage = load_run_config(config, plugin_manager=plugin_manager).pipeline.stages[0]
    assert stage.training.fsdp and stage.training.fsdp_config == {"cpu_ram_efficient_loading": True}
    assert unstructure(stage)["training"]["fsdp_config"] == {"cpu_ram_efficient_loading": True}

    config["stages"][2]["training"]["fsdp"] = True
    with pytest.raises(ConfigError, match="training.fsdp is for MLM stages"):
        load_run_config(config, plugin_manager=plugin_manager)


def test_the_process_group_timeout_is_ours(monkeypatch, tmp_path):
    from sec_cybert.core.distributed import DEFAULT_TIMEOUT_SECONDS, TIMEOUT_ENV, timeout_seconds

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert timeout_seconds() == DEFAULT_TIMEOUT_SECONDS >= 3600
    assert Training().trainer_arguments(tmp_path, CPU, seed=0, has_eval=False).ddp_timeout == DEFAULT_TIMEOUT_SECONDS
    monkeypatch.setenv(TIMEOUT_ENV, "90")
    assert timedelta(seconds=timeout_seconds()) == timedelta(minutes=1.5)
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match="SEC_CYBERT_DISTRIBUTED_TIMEOUT='soon'"):
        timeout_seconds()


def _torchrun() -> str | None:
    found = shutil.which("torchrun")
    beside = os.path.join(os.path.dirname(sys.executable), "torchrun")
    return found or (beside if os.path.exists(beside) else None)


@pytest.mark.slow
@pytest.mark.skipif(_torchrun() is None, reason="torchrun not installed")
def test_a_rank_that_waits_past_the_timeout_fails_and_one_within_it_does_not(tmp_path):
    """The main process prepares data while the others wait at a barrier: how long they wait is
    SEC_CYBERT_DISTRIBUTED_TIMEOUT, on CPU processes (gloo) too."""
    script = tmp_path / "wait.py"
    script.write_text(
        "import os, sys, time\n"
        "from sec_cybert.core.distributed import wait_for_everyone\n"
        "wait_for_everyone()\n"
        "if os.environ['RANK'] == '0':\n"
        "    time.sleep(float(sys.argv[1]))\n"
        "wait_for_everyone()\n"
        "print('rank', os.environ['RANK'], 'through', flush=True)\n"
    )

    def run(timeout: str, sleep: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "SEC_CYBERT_DISTRIBUTED_TIMEOUT": timeout}
        return subprocess.run(
            [_torchrun(), "--nproc_per_node", "2", str(script), sleep], capture_output=True, text=True, timeout=300, env=env
        )

    short = run("2", "20")
    assert short.returncode != 0 and "Timed out" in short.stderr, short.stderr[-2000:]
    # A wait longer than the short timeout passes under a long one.
    long = run("120", "4")
    assert long.returncode == 0, long.stderr[-2000:]
    assert long.stdout.count("through") == 2


@requires_gpu
@pytest.mark.slow
@pytest.mark.skipif(_torchrun() is None, reason="torchrun not installed")
def test_dapt_with_fsdp_under_torchrun_shards_trains_and_saves_a_loadable_model(tmp_path, tiny_corpus):
    import torch
    from transformers import AutoModelForMaskedLM

    processes = min(2, torch.cuda.device_count())
    config = tiny_pipeline_config(tiny_corpus, finetune=False, hardware="cuda")
    config["stages"] = config["stages"][:1]
    config["stages"][0]["training"].update(fsdp=True, gradient_checkpointing=True, save_steps=2)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    completed = subprocess.run(
        [_torchrun(), "--nproc_per_node", str(processes), "-m", "sec_cybert.cli", "-q", "run", str(path), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SEC_CYBERT_PLUGINS": ""},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())
    assert record["report"]["world_size"] == processes and record["metrics"]["global_step"] == 3
    # The Trainer's FSDP checkpoint (the full state dict on rank 0), not DDP's optimizer.pt.
    checkpoint = tmp_path / "run" / "dapt" / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "pytorch_model_fsdp.bin").is_file(), sorted(p.name for p in checkpoint.iterdir())
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "run" / "dapt")
    assert all(torch.isfinite(p).all() for p in model.parameters())
