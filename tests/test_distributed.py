"""The same config under torchrun: two CPU processes (gloo) run DDP through the HF Trainer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from sec_cybert.testing import tiny_pipeline_config


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("torchrun") is None
    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
    reason="torchrun not installed",
)
def test_two_processes_share_one_run_directory(tmp_path, tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = [config["stages"][0], config["stages"][2]]  # DAPT, then fine-tune
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    # CPU and gloo even on a GPU machine (two ranks on one GPU would fail in NCCL).
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "SEC_CYBERT_PLUGINS": ""}
    completed = subprocess.run(
        [
            torchrun,
            "--standalone",  # rendezvous on a free port, not 29500 (another torchrun may hold it)
            "--nproc_per_node",
            "2",
            "-m",
            "sec_cybert.cli",
            "-q",
            "run",
            str(path),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("done:") == 1  # printed by the main process only
    lineage = json.loads((tmp_path / "run" / "lineage.json").read_text())
    assert [(s["stage"], s["variant"]) for s in lineage["stages"]] == [
        ("dapt", "base"),
        ("finetune", "+DAPT"),
    ]
    record = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())
    assert record["report"]["world_size"] == 2 and record["metrics"]["global_step"] == 3
    assert (tmp_path / "run" / "finetune-dapt" / "heads.json").is_file()
