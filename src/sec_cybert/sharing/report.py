"""``sec-cybert report RUN_DIR``: one page that says what a run did, drawn from what it wrote.

Reads ``lineage.json`` (the stages, their inputs, configs and metrics), each stage's
``training-log.jsonl`` (every training event) and ``stage.json`` (its data report), and
``ablation.json`` when there is one. Writes ``RUN_DIR/report/``: ``report.md``, ``report.html``
(markdown-it-py; self-contained: the charts are embedded) and one PNG per chart -- the training
loss and the learning rate per stage, the eval loss per stage, and the ablation. Nothing is
recomputed: a number on the page is a number the run recorded.

Paths inside the run directory are shown relative to it (:mod:`sec_cybert.core.run_paths`), so a
report of a run directory that was moved or shared names its own parts rightly. Without the
``plot`` extra (matplotlib, markdown-it-py) the report says what it left out and how to get it,
and logs a warning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from sec_cybert.core.files import read_json_record, write_text_atomic
from sec_cybert.core.run_paths import recorded_run_dirs, resolve_recorded, run_relative
from sec_cybert.errors import DataError
from sec_cybert.sharing.report_charts import PLOT_HINT, plot_stage, pyplot, stage_notes
from sec_cybert.sharing.report_html import markdown_renderer, render_html

log = structlog.get_logger(__name__)

REPORT_DIR = "report"


def _events(stage_dir: Path) -> list[dict[str, Any]]:
    """The stage's training events; a step logged twice (redone after a resume) keeps its last."""
    path = stage_dir / "training-log.jsonl"
    if not path.is_file():
        return []
    latest: dict[tuple[str, int, tuple[str, ...]], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        latest[(event.get("event", ""), int(event.get("step", 0)), tuple(sorted(event)))] = event
    return sorted(latest.values(), key=lambda e: (e["step"], e.get("time", 0)))


def _stage_lines(entry: Mapping[str, Any], record: Mapping[str, Any], roots: Sequence[Path]) -> list[str]:
    report = record.get("report", {})
    metrics = entry.get("metrics", {})
    lines = [f"- input: `{run_relative(entry['input'], *roots)}`; output: `{run_relative(entry['output'], *roots)}`"]
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalars:
        lines.append("- metrics: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in scalars.items()))
    selection = report.get("selection")
    if selection:
        lines.append(
            f"- data: {selection['documents_kept']:,} of {selection['documents_in']:,} documents, "
            f"{selection['tokens_kept']:,} tokens kept"
            + (f" ({selection['oldest_kept']} .. {selection['newest_kept']})" if selection.get("newest_kept") else "")
        )
    duplicates = report.get("duplicates")
    if duplicates and duplicates.get("dropped"):
        lines.append(f"- copies dropped ({duplicates['mode']}): {duplicates['dropped']:,}")
    excluded = (report.get("contamination") or {}).get("excluded") or {}
    if any(excluded.values()):
        lines.append("- excluded by the contamination check: " + ", ".join(f"{k} {v}" for k, v in excluded.items() if v))
    truncated = report.get("truncated") or {}
    if truncated.get("documents"):
        lines.append(f"- truncated: {truncated['documents']:,} documents ({truncated['tokens']:,} tokens cut off)")
    if report.get("resumed_from"):
        lines.append(f"- resumed from `{run_relative(report['resumed_from'], *roots)}`")
    return lines


def build_report(run_dir: Path) -> Path:
    """Write ``run_dir/report/report.{md,html}`` and the charts; return the markdown file."""
    run_dir = Path(run_dir)
    lineage_path = run_dir / "lineage.json"
    if not lineage_path.is_file():
        raise DataError(f"{run_dir} has no lineage.json: is it a run directory (`sec-cybert run ... --out {run_dir}`)?")
    lineage = read_json_record(lineage_path, "the run's lineage")
    stages = lineage.get("stages", [])
    # An older lineage.json holds absolute paths of where the run was then: shown relative too.
    roots = [run_dir, *recorded_run_dirs([str(s["output"]) for s in stages])]
    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    plt, renderer = pyplot(), markdown_renderer()
    md = [
        f"# Run report: {run_dir.name}",
        "",
        f"Encoder `{lineage.get('encoder')}`, seed {lineage.get('seed')}, hardware `{lineage.get('hardware')}`; "
        + ", ".join(f"{k} {v}" for k, v in (lineage.get("versions") or {}).items())
        + ".",
    ]
    plugins = lineage.get("plugins") or {}
    foreign = {k: v for k, v in plugins.items() if v.get("distribution") not in (None, "sec-cybert")}
    if foreign:
        md.append("Plugins: " + ", ".join(f"{k} ({v['distribution']} {v['version']})" for k, v in foreign.items()) + ".")
    missing = _missing_extras(plt, renderer)
    if missing:
        md += ["", f"Not in this report: {missing}; `{PLOT_HINT}` adds them."]
    contamination = lineage.get("contamination") or {}
    overlaps = [o for o in contamination.get("overlaps", []) if o.get("exact", 0) + o.get("near", 0)]
    md += ["", "## Contamination check", ""]
    md += [f"- {o['source']} vs {o['target']}: {o['exact']} exact, {o['near']} near copies" for o in overlaps] or [
        "- no overlap found"
    ]
    images: dict[str, Path] = {}
    for entry in stages:
        stage_dir = resolve_recorded(str(entry["output"]), run_dir)
        record_path = stage_dir / "stage.json"
        record = read_json_record(record_path, "a finished stage's record") if record_path.is_file() else {}
        # stage.json keeps the absolute paths of where the stage ran: its own output_dir says where.
        stage_roots = [*roots, *recorded_run_dirs([str(record.get("output_dir", ""))])]
        md += ["", f"## {entry['stage']} ({entry['kind']}, variant {entry['variant']})", "", *_stage_lines(entry, record, stage_roots)]
        events = _events(stage_dir)
        chart = plot_stage(plt, stage_dir.name, events, out) if plt is not None else None
        if chart is not None:
            md += [f"- chart: {note}" for note in stage_notes(events)]
            md += ["", f"![{stage_dir.name}]({chart.name})"]
            images[chart.name] = chart
    ablation_md = run_dir / "ablation.md"
    if ablation_md.is_file():
        md += ["", "## Ablation", "", ablation_md.read_text(encoding="utf-8").strip()]
        chart = run_dir / "ablation.png"
        if chart.is_file():
            (out / "ablation.png").write_bytes(chart.read_bytes())
            md += ["", "![ablation](ablation.png)"]
            images["ablation.png"] = out / "ablation.png"
    text = "\n".join(md) + "\n"
    write_text_atomic(out / "report.md", text)
    page = out / "report.html"
    if renderer is not None:
        write_text_atomic(page, render_html(renderer, text, images, title=f"Run report: {run_dir.name}"))
    else:
        page.unlink(missing_ok=True)  # a page from an earlier report would no longer match report.md
    if missing:
        log.warning("report incomplete", left_out=missing, fix=PLOT_HINT)
    log.info("report written", path=str(out / "report.md"), html=renderer is not None, charts=len(images))
    return out / "report.md"


def _missing_extras(plt: Any, renderer: Any) -> str:
    """What the report leaves out for want of the ``plot`` extra, in words ("" when nothing)."""
    missing = []
    if plt is None:
        missing.append("the loss and learning-rate charts (matplotlib is not installed)")
    if renderer is None:
        missing.append("report.html (markdown-it-py is not installed)")
    return " and ".join(missing)
