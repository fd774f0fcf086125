"""The run report on small hand-written run directories (no training): the HTML page is rendered
markdown, a one-point stage is drawn and said so, a missing extra is said and logged, and a run
directory that moved still names its own parts."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sec_cybert.sharing.report import build_report
from sec_cybert.sharing.report_charts import PLOT_HINT

ABLATION_MD = "| Variant | specificity_qwk |\n|---|---|\n| base | 0.0000 |\n| +DAPT | -0.0800 |\n"


def _log(step: int, loss: float, lr: float | None = 1e-3) -> dict:
    return {"event": "log", "step": step, "time": step, "loss": loss} | ({"learning_rate": lr} if lr is not None else {})


def write_run(root: Path, stages: dict[str, list[dict]], *, relative: bool = True) -> Path:
    """A run directory as a finished run leaves it: lineage.json, and per stage its training log
    and stage.json. ``relative=False`` writes lineage.json as sec_cybert did before it stored
    paths relative to the run directory (absolute paths)."""
    run = root / "run"
    (run / "base").mkdir(parents=True)
    entries, previous = [], "base"
    for name, events in stages.items():
        directory = run / name
        directory.mkdir()
        (directory / "training-log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        resumed = directory / "checkpoints" / "checkpoint-2"
        record = {"output_dir": str(directory), "report": {"resumed_from": str(resumed)}}
        (directory / "stage.json").write_text(json.dumps(record))
        where = (lambda p: p.name) if relative else str
        entries.append(
            {
                "stage": name, "kind": "mlm", "variant": "base",
                "input": where(run / previous), "output": where(directory),
                "metrics": {"global_step": len(events)},
            }
        )
        previous = name
    lineage = {
        "encoder": "tiny-modernbert", "seed": 7, "hardware": "cpu",
        "versions": {"sec_cybert": "0.1.0"}, "stages": entries,
    }
    (run / "lineage.json").write_text(json.dumps(lineage))
    (run / "ablation.md").write_text(ABLATION_MD)
    return run


def test_the_page_is_rendered_markdown_with_code_tables_and_embedded_charts(tmp_path):
    run = write_run(tmp_path, {"dapt": [_log(1, 6.0), _log(2, 5.5), _log(3, 5.0)]})
    build_report(run)
    page = (run / "report" / "report.html").read_text()
    assert "<code>tiny-modernbert</code>" in page and "`" not in page  # backticks were shown literally
    assert "<table>" in page and "<th>Variant</th>" in page and "<td>-0.0800</td>" in page
    assert "<h2>dapt (mlm, variant base)</h2>" in page and "<li>" in page
    assert page.count("data:image/png;base64,") == 1 and 'alt="dapt"' in page


def test_a_stage_with_one_logged_point_is_drawn_and_said_so(tmp_path):
    from sec_cybert.sharing.report_charts import pyplot, stage_figure

    run = write_run(tmp_path, {"dapt": [_log(1, 6.25)], "tapt": [_log(1, 6.0, lr=None), _log(2, 5.0, lr=None)]})
    text = build_report(run).read_text()
    dapt, tapt = text.split("## tapt")
    assert "training loss: one logged point (step 1, 6.25), drawn as a dot" in dapt
    assert "learning rate: one logged point (step 1, 0.001)" in dapt
    assert "learning rate: none logged" in tapt and "one logged point" not in tapt
    plt = pyplot()
    figure = stage_figure(plt, "dapt", [_log(1, 6.25)])
    loss_axis, lr_axis = figure.axes
    assert loss_axis.lines[0].get_marker() == "o" and lr_axis.lines[0].get_marker() == "o"
    plt.close(figure)


def test_without_matplotlib_the_report_says_how_to_get_charts_and_warns(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    run = write_run(tmp_path, {"dapt": [_log(1, 6.0), _log(2, 5.0)]})
    with capture_logs() as logs:
        text = build_report(run).read_text()
    assert PLOT_HINT in text and "charts (matplotlib is not installed)" in text
    assert not list((run / "report").glob("dapt.png"))
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["fix"] == PLOT_HINT and "matplotlib" in warning["left_out"]
    assert [e["charts"] for e in logs if e["event"] == "report written"] == [0]


def test_without_markdown_it_no_stale_page_is_left_and_the_command_says_so(tmp_path, monkeypatch, capsys):
    from sec_cybert.cli import main

    run = write_run(tmp_path, {"dapt": [_log(1, 6.0), _log(2, 5.0)]})
    build_report(run)
    assert (run / "report" / "report.html").is_file()
    monkeypatch.setitem(sys.modules, "markdown_it", None)
    assert main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert not (run / "report" / "report.html").exists()  # the earlier page no longer matches
    assert "report.html (markdown-it-py is not installed)" in (run / "report" / "report.md").read_text()
    assert "no report.html" in captured.out and " and " not in captured.out
    assert "report incomplete" in captured.err and PLOT_HINT in captured.err


@pytest.mark.parametrize("relative", [True, False], ids=["lineage-now", "older-absolute-lineage"])
def test_a_moved_run_directory_still_names_its_own_parts(tmp_path, relative):
    run = write_run(tmp_path / "first-disk", {"dapt": [_log(1, 6.0), _log(2, 5.0)]}, relative=relative)
    moved = tmp_path / "shared" / "run"
    moved.parent.mkdir()
    shutil.move(run, moved)
    text = build_report(moved).read_text()
    assert str(tmp_path / "first-disk") not in text
    assert "- input: `base`; output: `dapt`" in text
    assert "- resumed from `dapt/checkpoints/checkpoint-2`" in text
    assert (moved / "report" / "dapt.png").is_file()  # the stage's log was found where it is now


def test_a_collapsed_finetune_is_marked_on_the_ablation_chart_and_negative_scores_show(tmp_path, monkeypatch):
    import types

    import matplotlib.pyplot as plt

    from sec_cybert.results.ablation import AblationTable

    stage = types.SimpleNamespace(name="finetune", ablation_metrics=lambda: ("specificity_qwk", "category_macro_f1"))
    variants = [types.SimpleNamespace(name=name, checkpoint="ckpt") for name in ("base", "+DAPT")]
    qwk = {"base": 0.0, "+DAPT": -0.08}
    results = {
        ("finetune", name, 1): types.SimpleNamespace(
            metrics={"specificity_qwk": qwk[name], "category_macro_f1": 0.4, "evaluated_on": "holdout"},
            output_dir=Path("out"),
        )
        for name in qwk
    }
    table = AblationTable.from_results([stage], variants, results, [1])
    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep the figure to look at
    assert table.plot(tmp_path / "ablation.png")
    (axis,) = drawn[0].axes
    assert axis.get_ylim()[0] < -0.08  # the bar below zero is inside the chart
    labels = sorted(t.get_text() for t in axis.texts)
    assert labels == ["collapsed (-0.08)", "collapsed (0.00)"]  # one per bar at or below zero, none for 0.4
    monkeypatch.undo()
    plt.close(drawn[0])
