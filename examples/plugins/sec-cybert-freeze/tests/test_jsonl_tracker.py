"""The ``jsonl`` tracker: one strict-JSON line per call, with the stage's variant and tag."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
from sec_cybert.stages import StageContext, StageResult

from sec_cybert_freeze import JsonlTracker


def test_every_call_is_one_line(tmp_path):
    tracker = JsonlTracker()
    context = StageContext(
        run_dir=tmp_path, init_from="base", hardware=None, seed=7, variant="+DAPT", tag="dapt"
    )
    context = attrs.evolve(context, stage_name="finetune", output_dir=tmp_path / "finetune-dapt")
    tracker.start_stage(context, {"kind": "finetune", "max_length": 64})
    tracker.log(context, "log", 1, {"loss": 2.5, "epoch": 0.5, "note": "text", "flag": True})
    tracker.log(context, "evaluate", 2, {"eval_loss": float("nan")})
    result = StageResult(
        stage="finetune",
        kind="finetune",
        output_dir=tmp_path / "finetune-dapt",
        init_from="base",
        metrics={"f1": {"a": 0.5}},
    )
    tracker.finish_stage(context, result)
    tracker.finish_stage(context, None)
    tracker.finish_run(tmp_path, {"lineage": {"seed": 7, "path": Path("/x")}})

    lines = [json.loads(line) for line in (tmp_path / "tracking.jsonl").read_text().splitlines()]
    calls = [line["call"] for line in lines]
    assert calls == ["start_stage", "log", "log", "finish_stage", "finish_stage", "finish_run"]
    start, log, evaluate, finished, failed, run = lines
    about = {k: start[k] for k in ("stage", "variant", "tag", "seed")}
    assert about == {"stage": "finetune", "variant": "+DAPT", "tag": "dapt", "seed": 7}
    assert start["config"] == {"kind": "finetune", "max_length": 64}
    assert (log["event"], log["step"], log["metrics"]) == ("log", 1, {"loss": 2.5, "epoch": 0.5})
    assert evaluate["metrics"] == {"eval_loss": None}  # NaN is not JSON
    assert finished["status"] == "finished" and finished["metrics"] == {"f1": {"a": 0.5}}
    assert failed["status"] == "failed"
    assert run["lineage"] == {"seed": 7, "path": "/x"}


def test_path_option(tmp_path):
    absolute = tmp_path / "elsewhere" / "calls.jsonl"
    JsonlTracker(path=absolute).finish_run(tmp_path / "run", {"ablation": {}})
    JsonlTracker(path=Path("logs/calls.jsonl")).finish_run(tmp_path / "run", {"ablation": {}})
    assert absolute.is_file() and (tmp_path / "run" / "logs" / "calls.jsonl").is_file()
