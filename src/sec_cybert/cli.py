"""The ``sec-cybert`` command line. The only place that configures logging.

Every user error (config, data, plugin, hardware) is printed as ``error: <what and how to fix>``
on stderr, one line per problem, with exit status 2; never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
import structlog

from sec_cybert.distributed import is_main_process
from sec_cybert.errors import ConfigError, Preempted, SecCybertError

log = structlog.get_logger(__name__)

USER_ERROR_EXIT = 2
#: 128 + SIGTERM, what a shell reports for a process SIGTERM ended: schedulers treat it as preempted.
PREEMPTED_EXIT = 143


def configure_logging(verbosity: int, fmt: str) -> None:
    if verbosity <= 0:
        # Our structlog lines report progress; the libraries' bars (tokenizing, loading and writing
        # weights, downloads) would interleave with them. -v brings them back.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="More output: -v debug logs and the libraries' progress bars."
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True)
@click.version_option(package_name="sec-cybert")
def cli(verbose: int, quiet: bool, log_format: str) -> None:
    """Domain- and task-adaptive pretraining of encoders, and the fine-tuning that follows."""
    configure_logging(-1 if quiet else verbose, log_format)


def _load(config: Path, hardware: str | None) -> Any:
    from sec_cybert.config import load_yaml, resolve_config_path
    from sec_cybert.pipeline import load_run_config

    path = resolve_config_path(config)
    data = load_yaml(path)
    if hardware:
        data["hardware"] = hardware
    return load_run_config(data, source=str(path))


def _out(run_config: Any, out: Path | None) -> Path:
    directory = out or run_config.output_dir
    if directory is None:
        raise ConfigError("no output directory: pass --out DIR or set output_dir in the config")
    return Path(directory)


def _run(
    config: Path, out: Path | None, hardware: str | None, ablate: bool, expect_variant: bool | None = None
) -> None:
    run_config = _load(config, hardware)
    if expect_variant is not None and not any(
        stage.produces_variant == expect_variant for stage in run_config.pipeline.stages
    ):
        wanted = "pretraining (mlm)" if expect_variant else "fine-tune"
        raise ConfigError(f"{config} has no {wanted} stage; use `sec-cybert run {config}` for other pipelines")
    run_dir = _out(run_config, out)
    result = run_config.pipeline.run(run_dir)
    if ablate:
        table = result.ablation(run_config.ablation_seeds)
        if is_main_process():
            click.echo(table.to_markdown())
    if is_main_process():
        click.echo(f"done: {run_dir} (lineage in {run_dir / 'lineage.json'})")


_config_argument = click.argument("config", type=click.Path(path_type=Path))
_config_option = click.option(
    "--config", "config", required=True, type=click.Path(path_type=Path), help="Config YAML."
)
_out_option = click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default: output_dir of the config)."
)
_hardware_option = click.option("--hardware", help="Hardware profile name or 'auto' (overrides the config).")


@cli.command()
@_config_argument
@_out_option
@_hardware_option
@click.option(
    "--ablate/--no-ablate", default=False, help="Also fine-tune every variant and write the ablation table."
)
def run(config: Path, out: Path | None, hardware: str | None, ablate: bool) -> None:
    """Run the pipeline in CONFIG (resumes what the run directory holds)."""
    _run(config, out, hardware, ablate)


@cli.command()
@_config_option
@_out_option
@_hardware_option
def dapt(config: Path, out: Path | None, hardware: str | None) -> None:
    """Domain-adaptive pretraining from a DAPT config (e.g. configs/dapt/modernbert.yaml)."""
    _run(config, out, hardware, ablate=False, expect_variant=True)


@cli.command()
@_config_option
@_out_option
@_hardware_option
def tapt(config: Path, out: Path | None, hardware: str | None) -> None:
    """Task-adaptive pretraining from a TAPT config (e.g. configs/tapt/modernbert.yaml)."""
    _run(config, out, hardware, ablate=False, expect_variant=True)


@cli.command()
@_config_option
@_out_option
@_hardware_option
def finetune(config: Path, out: Path | None, hardware: str | None) -> None:
    """Fine-tune classifiers from a fine-tune config."""
    _run(config, out, hardware, ablate=False, expect_variant=False)


@cli.command()
@_config_argument
@_out_option
@_hardware_option
@click.option(
    "--seeds", help="Comma-separated seeds, e.g. 1,2,3 (default: the config's ablation_seeds or seed)."
)
def ablate(config: Path, out: Path | None, hardware: str | None, seeds: str | None) -> None:
    """Fine-tune base, +DAPT and +DAPT+TAPT alike and write ablation.{json,md,png}."""
    run_config = _load(config, hardware)
    run_dir = _out(run_config, out)
    chosen = _parse_seeds(seeds) if seeds else run_config.ablation_seeds
    table = run_config.pipeline.run(run_dir).ablation(chosen)
    if is_main_process():
        click.echo(table.to_markdown())


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers, e.g. 1,2,3") from None


@cli.command()
@_config_argument
def validate(config: Path) -> None:
    """Check CONFIG and report every problem at once (key path, bad value, what is allowed)."""
    from sec_cybert.config import registered_name
    from sec_cybert.plugins import get_registry

    run_config = _load(config, None)
    registry = get_registry()
    stages = ", ".join(
        f"{s.name} ({registered_name(type(s), registry) or type(s).__name__})" for s in run_config.pipeline.stages
    )
    click.echo(f"{config}: valid; stages: {stages}")


@cli.command()
@_config_argument
@_hardware_option
@click.option(
    "--world-size", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel processes."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(config: Path, hardware: str | None, world_size: int, as_json: bool) -> None:
    """Print what a run of CONFIG will do: data kept, sequences, steps, warmup, estimated time."""
    from sec_cybert.plan import plan_pipeline

    result = plan_pipeline(_load(config, hardware).pipeline, world_size=world_size)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.to_text())


@cli.command()
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
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--skip-bad-records", is_flag=True, help="Count and skip unreadable lines instead of stopping.")
@click.option("--overwrite", is_flag=True, help="Replace split files already in --out.")
def split(labeled, out, by, fractions, stratify, threshold, seed, skip_bad_records, overwrite) -> None:
    """Split LABELED (JSONL) into train/eval/holdout by company or filing, copies kept together."""
    from sec_cybert.corpus.split import parse_fractions, split_labeled

    if not Path(labeled).is_file():
        raise ConfigError(f"{labeled}: no such file; give the labeled JSONL file to split")
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List registered components by kind, and each plugin with its package, version and hooks."""
    from sec_cybert.plugins import get_plugin_manager, get_registry, plugin_distributions

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


@cli.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory for data, checkpoints and tables.",
)
@_hardware_option
@click.option("--seed", default=42, show_default=True)
def demo(out: Path, hardware: str | None, seed: int) -> None:
    """DAPT -> TAPT -> fine-tune and the ablation, on the embedded corpus with a tiny model (CPU, no downloads)."""
    from sec_cybert.demo import run_demo

    table = run_demo(out, hardware=hardware or "auto", seed=seed)
    click.echo(table.to_markdown())
    click.echo(f"done: {out} (ablation.md, ablation.json, lineage.json; config in {out / 'demo.yaml'})")


def _add_plugin_commands() -> None:
    from sec_cybert.plugins import get_plugin_manager

    get_plugin_manager().hook.register_commands(cli=cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line each and exit status 2."""
    try:
        _add_plugin_commands()
        cli.main(args=argv, prog_name="sec-cybert", standalone_mode=False)
    except Preempted as exc:
        click.echo(f"stopped: {exc}", err=True)
        return PREEMPTED_EXIT
    except SecCybertError as exc:
        lines = exc.problems if isinstance(exc, ConfigError) and len(exc.problems) > 1 else [str(exc)]
        prefix = (
            f"{exc.source}: " if isinstance(exc, ConfigError) and exc.source and len(exc.problems) > 1 else ""
        )
        for line in lines:
            click.echo(f"error: {prefix}{line}", err=True)
        return USER_ERROR_EXIT
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted; run the same command again to resume from the last checkpoint", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
