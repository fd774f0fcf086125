"""lineage.json names what lies inside the run directory relative to it, so that a run directory
moved or shared still names its own parts; what lies outside keeps its absolute path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sec_cybert.core.context import StageResult
from sec_cybert.core.lineage import Lineage
from sec_cybert.core.run_paths import resolve_recorded, run_relative


def _result(run: Path, name: str, init_from: str) -> StageResult:
    return StageResult(stage=name, kind="mlm", output_dir=run / name, init_from=init_from, produces_variant=True)


def test_lineage_stores_paths_inside_the_run_directory_relative_to_it(tmp_path):
    run, elsewhere = tmp_path / "run", tmp_path / "models" / "my-base"
    elsewhere.mkdir(parents=True)
    lineage = Lineage(path=run / "lineage.json", header={}, base=str(run / "base"))
    run.mkdir()
    lineage.record(_result(run, "dapt", str(run / "base")), variant="base")
    lineage.record(_result(run, "tapt", str(run / "dapt")), variant="+DAPT")
    lineage.record(_result(run, "other", str(elsewhere)), variant="base")
    lineage.record(_result(run, "hub", "answerdotai/ModernBERT-base"), variant="base")
    saved = json.loads((run / "lineage.json").read_text())
    assert [(s["input"], s["output"]) for s in saved["stages"]] == [
        ("base", "dapt"),
        ("dapt", "tapt"),
        (str(elsewhere), "other"),  # outside the run directory: where it is
        ("answerdotai/ModernBERT-base", "hub"),  # a hub id, as written
    ]
    assert saved["base_checkpoint"] == "base"
    # Recording a stage again replaces its entry, whether the output is given absolute or not.
    lineage.record(_result(run, "dapt", str(run / "base")), variant="base")
    assert [s["output"] for s in json.loads((run / "lineage.json").read_text())["stages"]].count("dapt") == 1


def test_an_older_lineage_with_absolute_paths_is_read_relative_even_after_a_move(tmp_path):
    old = tmp_path / "old" / "run"
    (old / "dapt").mkdir(parents=True)
    entry = {"stage": "dapt", "kind": "mlm", "variant": "base", "input": str(old / "base"), "output": str(old / "dapt")}
    (old / "lineage.json").write_text(json.dumps({"stages": [entry]}))
    moved = tmp_path / "new" / "run"
    moved.parent.mkdir()
    shutil.move(old, moved)
    lineage = Lineage.start(moved, header={"encoder": "tiny-modernbert"})
    assert [(s["input"], s["output"]) for s in lineage.stages] == [("base", "dapt")]
    lineage.record(_result(moved, "dapt", str(moved / "base")), variant="base")
    assert len(lineage.stages) == 1  # the same stage, not a second entry


def test_run_relative_and_back(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "x"
    (run / "dapt").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert run_relative("runs/x/dapt", run) == "dapt"  # given relative to the working directory
    assert run_relative(run / "dapt" / "checkpoints" / "checkpoint-3", run) == "dapt/checkpoints/checkpoint-3"
    assert run_relative(run, run) == "."
    assert run_relative(None, run) is None
    assert run_relative("not/here", run) == "not/here"
    assert resolve_recorded("dapt", run) == run / "dapt"
    assert resolve_recorded(str(tmp_path / "gone" / "dapt"), run) == run / "dapt"
