"""The commands around a run rather than the run itself: split a labeled file, export a head, push
to the hub, write the report, list the plugins. :mod:`sec_cybert.cli` adds them to its group."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sec_cybert.core.log_setup import library_output
from sec_cybert.errors import ConfigError


@click.command()
@click.argument("labeled", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory for the three files.")
@click.option(
    "--by",
    default="company",
    show_default=True,
    help="Unit kept whole: company (cik), filing (accession, else source_file), or any field name.",
)
@click.option("--fractions", default="0.8,0.1,0.1", show_default=True, help="train,eval,holdout.")
@click.option("--stratify", default="category", show_default=True, help="Label field to balance.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="Jaccard similarity at which two paragraphs are near-duplicates (kept in one split).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the shuffle that assigns units to splits.")
@click.option("--skip-bad-records", is_flag=True, help="Count and skip unreadable lines instead of stopping.")
@click.option("--overwrite", is_flag=True, help="Replace split files already in --out.")
def split(labeled, out, by, fractions, stratify, threshold, seed, skip_bad_records, overwrite) -> None:
    """Split LABELED (JSONL) into train/eval/holdout by company or filing, copies kept together."""
    from sec_cybert.corpus.split import parse_fractions, split_labeled

    if not Path(labeled).is_file():
        raise ConfigError(f"{labeled}: no such file; give the labeled JSONL file to split")
    with library_output():
        report = split_labeled(
            labeled,
            out,
            by=by,
            fractions=parse_fractions(fractions),
            stratify=stratify,
            threshold=threshold,
            seed=seed,
            on_bad_record="skip" if skip_bad_records else "raise",
            overwrite=overwrite,
        )
    click.echo(report.to_text())
    click.echo(f"written: {', '.join(s['file'] for s in report.splits.values())} (report: {out / 'split-report.json'})")


@click.command("export-head")
@click.argument("finetuned", type=click.Path(path_type=Path))
@click.option("--head", "head_name", required=True, help="The head to export, e.g. category.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New directory for the export.")
def export_head_command(finetuned: Path, head_name: str, out: Path) -> None:
    """One head of a fine-tuned directory as a plain AutoModelForSequenceClassification checkpoint."""
    from sec_cybert.sharing.export import export_head

    with library_output():
        written = export_head(finetuned, head_name, out)
    click.echo(f"written: {written} (AutoModelForSequenceClassification.from_pretrained loads it)")


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--repo", required=True, help="The hub model repo, ORG/NAME.")
@click.option("--public", is_flag=True, help="Create the repo public (default: private).")
def push(directory: Path, repo: str, public: bool) -> None:
    """Upload a saved directory (a stage's output or an export) to the Hugging Face hub."""
    from sec_cybert.sharing.hub import push_to_hub

    with library_output():
        pushed = push_to_hub(directory, repo, private=not public)
    click.echo(f"pushed: {pushed}")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """One page on RUN_DIR: each stage's data, metrics and loss/LR curves, and the ablation."""
    from sec_cybert.sharing.report import build_report

    with library_output():
        path = build_report(run_dir)
    page = path.with_suffix(".html")
    click.echo(f"written: {path}" + (f" and {page}" if page.is_file() else " (no report.html: see the warning above)"))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List registered components by kind, and each plugin with its package, version and hooks."""
    from sec_cybert.plugins.registry import get_plugin_manager, get_registry, plugin_distributions

    pm = get_plugin_manager()
    registry = get_registry(pm)
    distributions = plugin_distributions(pm)
    hooks_by_plugin = {
        name: sorted(
            impl.function.__name__
            for caller in pm.get_hookcallers(plugin) or []
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin
        )
        for name, plugin in pm.list_name_plugin()
    }
    if as_json:
        payload = {
            "components": [{"kind": r.kind, "name": r.name, "plugin": r.plugin} for r in registry],
            "plugins": [
                {"name": name, **distributions.get(name, {}), "hooks": hooks}
                for name, hooks in sorted(hooks_by_plugin.items())
            ],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    current = None
    for registration in registry:
        if registration.kind != current:
            current = registration.kind
            click.echo(f"{current}:")
        click.echo(f"  {registration.name:<24} {registration.plugin}")
    click.echo("plugins:")
    for name, hooks in sorted(hooks_by_plugin.items()):
        dist = distributions.get(name, {})
        package = f"{dist['distribution']} {dist['version']}" if dist.get("distribution") else "(registered from code)"
        click.echo(f"  {name:<24} {package:<24} {', '.join(hooks)}")
