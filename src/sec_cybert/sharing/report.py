"""``sec-cybert report RUN_DIR``: one page that says what a run did, drawn from what it wrote.

Reads ``lineage.json`` (the stages, their inputs, configs and metrics), each stage's
``training-log.jsonl`` (every training event) and ``stage.json`` (its data report), and
``ablation.json`` when there is one. Writes ``RUN_DIR/report/``: ``report.md``, ``report.html``
(self-contained: the charts are embedded) and one PNG per chart -- the training loss and the
learning rate per stage, the eval loss per stage, and the ablation. Nothing is recomputed: a
number on the page is a number the run recorded.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from sec_cybert.errors import DataError
from sec_cybert.files import read_json_record, write_text_atomic

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


def _series(events: Sequence[Mapping[str, Any]], key: str, event: str = "log") -> tuple[list[int], list[float]]:
    points = [(e["step"], e[key]) for e in events if e.get("event") == event and isinstance(e.get(key), (int, float))]
    return [p[0] for p in points], [float(p[1]) for p in points]


def _plot_stage(name: str, events: Sequence[Mapping[str, Any]], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps, loss = _series(events, "loss")
    lr_steps, lr = _series(events, "learning_rate")
    eval_steps, eval_loss = _series(events, "eval_loss", "evaluate")
    if not steps and not eval_steps:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(steps, loss, label="train loss")
    if eval_steps:
        left.plot(eval_steps, eval_loss, "o-", label="eval loss")
    left.set_xlabel("optimizer step")
    left.set_ylabel("loss (nats)")
    left.legend()
    right.plot(lr_steps, lr, color="tab:green")
    right.set_xlabel("optimizer step")
    right.set_ylabel("learning rate")
    figure.suptitle(name, fontsize=10)
    figure.tight_layout()
    path = out / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _stage_lines(entry: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    report = record.get("report", {})
    metrics = entry.get("metrics", {})
    lines = [f"- input: `{entry['input']}`; output: `{entry['output']}`"]
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
        lines.append(f"- resumed from `{report['resumed_from']}`")
    return lines


def build_report(run_dir: Path) -> Path:
    """Write ``run_dir/report/report.{md,html}`` and the charts; return the markdown file."""
    run_dir = Path(run_dir)
    lineage_path = run_dir / "lineage.json"
    if not lineage_path.is_file():
        raise DataError(f"{run_dir} has no lineage.json: is it a run directory (`sec-cybert run ... --out {run_dir}`)?")
    lineage = read_json_record(lineage_path, "the run's lineage")
    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
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
    contamination = lineage.get("contamination") or {}
    overlaps = [o for o in contamination.get("overlaps", []) if o.get("exact", 0) + o.get("near", 0)]
    md += ["", "## Contamination check", ""]
    md += [f"- {o['source']} vs {o['target']}: {o['exact']} exact, {o['near']} near copies" for o in overlaps] or [
        "- no overlap found"
    ]
    images: list[tuple[str, Path]] = []
    for entry in lineage.get("stages", []):
        stage_dir = Path(entry["output"])
        if not stage_dir.is_dir():  # the run directory moved: the entry names where it was
            stage_dir = run_dir / stage_dir.name
        record_path = stage_dir / "stage.json"
        record = read_json_record(record_path, "a finished stage's record") if record_path.is_file() else {}
        title = f"{entry['stage']} ({entry['kind']}, variant {entry['variant']})"
        md += ["", f"## {title}", "", *_stage_lines(entry, record)]
        chart = _plot_stage(stage_dir.name, _events(stage_dir), out)
        if chart is not None:
            md += ["", f"![{stage_dir.name}]({chart.name})"]
            images.append((title, chart))
    ablation_md = run_dir / "ablation.md"
    if ablation_md.is_file():
        md += ["", "## Ablation", "", ablation_md.read_text(encoding="utf-8").strip()]
        chart = run_dir / "ablation.png"
        if chart.is_file():
            (out / "ablation.png").write_bytes(chart.read_bytes())
            md += ["", "![ablation](ablation.png)"]
            images.append(("Ablation", out / "ablation.png"))
    text = "\n".join(md) + "\n"
    write_text_atomic(out / "report.md", text)
    write_text_atomic(out / "report.html", _html(text, {p.name: p for _, p in images}))
    log.info("report written", path=str(out / "report.md"), charts=len(images))
    return out / "report.md"


def _html(markdown: str, images: Mapping[str, Path]) -> str:
    """A plain rendering of the markdown above, with the charts inlined as data URIs."""
    body: list[str] = []
    table: list[str] = []

    def flush_table() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head, *rest = cells
            body.append(
                "<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rest)
                + "</table>"
            )
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("!["):
            name = line[line.index("(") + 1 : -1]
            data = base64.b64encode(images[name].read_bytes()).decode() if name in images else ""
            body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Run report</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
