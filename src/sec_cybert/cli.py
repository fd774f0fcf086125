"""The ``sec-cybert`` command line. The only place that configures logging.

Every user error (config, data, plugin, hardware) is printed as ``error: <what and how to fix>``
on stderr, one line per problem, with exit status 2; never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
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


#: Read by the training progress bar (sec_cybert.stages.callbacks.progress_bar_wanted); kept here
#: as a string so that `--help` imports nothing heavy.
PROGRESS_ENV = "SEC_CYBERT_PROGRESS"

#: The level configure_logging set, so the plan computed before a run can be quieted and restored.
_log_level = logging.INFO


def _add_rank(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``rank=N`` on every line of a multi-process run (torchrun sets RANK and WORLD_SIZE), so
    two ranks' lines can be told apart; nothing is added to a single-process run."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        event.setdefault("rank", int(os.environ.get("RANK", "0") or 0))
    return event


def configure_logging(verbosity: int, fmt: str) -> None:
    global _log_level
    # The training bar (stages.callbacks) and the data-preparation bars (datasets: tokenizing,
    # grouping) show on a terminal; --quiet turns every bar off. The hub's weight-loading bars
    # would only interleave with our lines: -v brings them back.
    if verbosity < 0:
        os.environ[PROGRESS_ENV] = "off"
    if verbosity < 0 or not sys.stderr.isatty():
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if verbosity <= 0:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        # transformers reads that variable once, at import: when it is imported already (main()
        # called from Python), tell it directly. Not importing it keeps `--help` fast.
        hf_logging = sys.modules.get("transformers.utils.logging")
        if hf_logging is not None and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
            hf_logging.disable_progress_bar()
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    _log_level = level
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            _add_rank,
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
    "-v", "--verbose", count=True, help="More output: -v debug logs and the libraries' own progress bars."
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors, and no progress bars.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True)
@click.version_option(package_name="sec-cybert")
def cli(verbose: int, quiet: bool, log_format: str) -> None:
    """Domain- and task-adaptive pretraining of encoders, and the fine-tuning that follows."""
    configure_logging(-1 if quiet else verbose, log_format)


def _load(config: Path, hardware: str | None, overrides: tuple[str, ...] = ()) -> Any:
    """CONFIG as a RunConfig: ``--hardware`` and then each ``KEY.PATH=VALUE`` override applied to
    the file's mapping before it is validated, so an override is checked like the file."""
    from sec_cybert.config import apply_overrides, load_yaml, override_problems, resolve_config_path
    from sec_cybert.config_encoder import check_encoder
    from sec_cybert.pipeline import load_run_config

    path = resolve_config_path(config)
    data = load_yaml(path)
    if hardware:
        data["hardware"] = hardware
    if overrides:
        data = apply_overrides(data, overrides)
        data["overrides"] = list(overrides)  # PipelineSettings.overrides: for lineage.json
    try:
        run_config = load_run_config(data, source=str(path))
        # What only the encoder's own config.json tells (its positions), before anything trains.
        check_encoder(run_config.pipeline, source=str(path))
        return run_config
    except ConfigError as exc:
        raise override_problems(exc, overrides) from None


def _out(run_config: Any, out: Path | None) -> Path:
    directory = out or run_config.output_dir
    if directory is None:
        raise ConfigError("no output directory: pass --out DIR or set output_dir in the config")
    return Path(directory)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Errors only (unless -v), for work the run repeats with its own log lines."""
    if _log_level <= logging.DEBUG:
        yield
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    try:
        yield
    finally:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(_log_level))


def _check_plan(run_config: Any, config: Path, strict: bool) -> None:
    """``--strict``: plan the run before it starts and refuse what makes it degenerate.

    The plan reads and tokenizes the data as the run will (``sec-cybert plan``), which at DAPT
    scale is minutes: without ``--strict`` each stage checks the same numbers as it starts, for
    free, and warns. The plan's log lines are left out, since the run writes the same ones.
    """
    from sec_cybert.distributed import world_size
    from sec_cybert.plan import degenerate_problems, plan_pipeline

    started = time.perf_counter()
    try:
        with _quiet_logs():
            run_config.pipeline._hardware()  # a GPU profile without a GPU fails now, not after the plan
            plan = plan_pipeline(run_config.pipeline, world_size=world_size())
    except SecCybertError:
        raise  # the run would stop on it too: say it now
    except Exception as exc:  # a plugin stage's plan failing must not stop a run it cannot judge
        failure = f"{type(exc).__name__}: {exc}"
        if strict:
            raise ConfigError(f"--strict: could not plan the run to check it: {failure}") from None
        log.warning("could not plan the run; its steps were not checked", error=failure)
        return
    problems = degenerate_problems(plan)
    seconds = round(time.perf_counter() - started, 1)
    log.info("plan checked", stages=len(plan.stages), problems=len(problems), seconds=seconds)
    if problems and strict:
        raise ConfigError(problems, source=str(config))
    if is_main_process():
        for line in problems:
            click.echo(f"warning: {line}", err=True)


def _run(
    config: Path,
    out: Path | None,
    hardware: str | None,
    ablate: bool,
    expect_variant: bool | None = None,
    overrides: tuple[str, ...] = (),
    strict: bool = False,
) -> None:
    run_config = _load(config, hardware, overrides)
    if expect_variant is not None and not any(
        stage.produces_variant == expect_variant for stage in run_config.pipeline.stages
    ):
        wanted = "pretraining (mlm)" if expect_variant else "fine-tune"
        raise ConfigError(f"{config} has no {wanted} stage; use `sec-cybert run {config}` for other pipelines")
    run_dir = _out(run_config, out)
    if strict:
        _check_plan(run_config, config, strict)
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
_overrides_argument = click.argument("overrides", nargs=-1, metavar="[KEY.PATH=VALUE]...")
_strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Refuse a degenerate run (learning rate stuck at 0 or never at its peak, data under one batch) "
    "instead of warning.",
)


_OVERRIDES_HELP = (
    " KEY.PATH=VALUE arguments override the file's values before it is checked, e.g. "
    "stages.0.training.max_steps=5 seed=3 (values are YAML; list items by number)."
)


@cli.command(help="Run the pipeline in CONFIG (resumes what the run directory holds)." + _OVERRIDES_HELP)
@_config_argument
@_overrides_argument
@_out_option
@_hardware_option
@click.option(
    "--ablate/--no-ablate", default=False, help="Also fine-tune every variant and write the ablation table."
)
@_strict_option
def run(
    config: Path, overrides: tuple[str, ...], out: Path | None, hardware: str | None, ablate: bool, strict: bool
) -> None:
    _run(config, out, hardware, ablate, overrides=overrides, strict=strict)


@cli.command(
    help="Domain-adaptive pretraining from a DAPT config (e.g. configs/dapt/modernbert.yaml)."
    + _OVERRIDES_HELP
)
@_config_option
@_overrides_argument
@_out_option
@_hardware_option
@_strict_option
def dapt(
    config: Path, overrides: tuple[str, ...], out: Path | None, hardware: str | None, strict: bool
) -> None:
    _run(config, out, hardware, ablate=False, expect_variant=True, overrides=overrides, strict=strict)


@cli.command(
    help="Task-adaptive pretraining from a TAPT config (e.g. configs/tapt/modernbert.yaml)." + _OVERRIDES_HELP
)
@_config_option
@_overrides_argument
@_out_option
@_hardware_option
@_strict_option
def tapt(
    config: Path, overrides: tuple[str, ...], out: Path | None, hardware: str | None, strict: bool
) -> None:
    _run(config, out, hardware, ablate=False, expect_variant=True, overrides=overrides, strict=strict)


@cli.command(help="Fine-tune classifiers from a fine-tune config." + _OVERRIDES_HELP)
@_config_option
@_overrides_argument
@_out_option
@_hardware_option
@_strict_option
def finetune(
    config: Path, overrides: tuple[str, ...], out: Path | None, hardware: str | None, strict: bool
) -> None:
    _run(config, out, hardware, ablate=False, expect_variant=False, overrides=overrides, strict=strict)


@cli.command(
    help="Fine-tune base, +DAPT and +DAPT+TAPT alike and write ablation.{json,md,png}." + _OVERRIDES_HELP
)
@_config_argument
@_overrides_argument
@_out_option
@_hardware_option
@click.option(
    "--seeds", help="Comma-separated seeds, e.g. 1,2,3 (default: the config's ablation_seeds or seed)."
)
@click.option(
    "--seed-count",
    type=click.IntRange(min=1),
    help="Fine-tune each variant with this many seeds: the config's seed and the ones after it "
    "(instead of --seeds). More seeds narrow the intervals.",
)
@click.option(
    "--test",
    type=click.Choice(["permutation", "bootstrap"]),
    default="permutation",
    show_default=True,
    help="The paired test of each difference: a permutation test swapping groups between the two "
    "variants, or the paired multi-bootstrap's own (docs/configs.md, 'The ablation's statistics').",
)
@click.option(
    "--group-by",
    type=click.Choice(["company", "filing", "item"]),
    default="company",
    show_default=True,
    help="Resample whole companies or filings (paragraphs of one filing are not independent), or items.",
)
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True, help="Interval level.")
@click.option("--resamples", type=click.IntRange(min=99), default=2000, show_default=True, help="Bootstrap and permutation draws.")
@_strict_option
def ablate(
    config: Path,
    overrides: tuple[str, ...],
    out: Path | None,
    hardware: str | None,
    seeds: str | None,
    seed_count: int | None,
    test: str,
    group_by: str,
    confidence: float,
    resamples: int,
    strict: bool,
) -> None:
    from sec_cybert.ablation_intervals import Settings

    if seeds and seed_count:
        raise click.UsageError("give --seeds or --seed-count, not both")
    run_config = _load(config, hardware, overrides)
    run_dir = _out(run_config, out)
    if seed_count:
        chosen = [run_config.pipeline.seed + i for i in range(seed_count)]
    else:
        chosen = _parse_seeds(seeds) if seeds else run_config.ablation_seeds
    if strict:
        _check_plan(run_config, config, strict)
    uncertainty = Settings(confidence=confidence, resamples=resamples, test=test, group_by=group_by)
    table = run_config.pipeline.run(run_dir).ablation(chosen, uncertainty)
    if is_main_process():
        click.echo(table.to_markdown())


def _parse_seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers, e.g. 1,2,3") from None


@cli.command(
    help="Check CONFIG and report every problem at once (key path, bad value, what is allowed)."
    + _OVERRIDES_HELP
)
@_config_argument
@_overrides_argument
def validate(config: Path, overrides: tuple[str, ...]) -> None:
    from sec_cybert.config import registered_name
    from sec_cybert.plugins import get_registry

    run_config = _load(config, None, overrides)
    registry = get_registry()
    stages = ", ".join(
        f"{s.name} ({registered_name(type(s), registry) or type(s).__name__})" for s in run_config.pipeline.stages
    )
    applied = f" with {' '.join(overrides)}" if overrides else ""
    click.echo(f"{config}: valid{applied}; stages: {stages}")


@cli.command(
    help="Print what a run of CONFIG will do: data kept, sequences, steps, warmup, estimated time, and "
    "a warning for each thing that makes it degenerate (--strict: exit 2 on them)." + _OVERRIDES_HELP
)
@_config_argument
@_overrides_argument
@_hardware_option
@click.option(
    "--world-size", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel processes."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_strict_option
def plan(
    config: Path, overrides: tuple[str, ...], hardware: str | None, world_size: int, as_json: bool, strict: bool
) -> None:
    from sec_cybert.plan import plan_pipeline

    result = plan_pipeline(_load(config, hardware, overrides).pipeline, world_size=world_size)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.to_text())
    if strict and result.warnings:
        raise ConfigError(result.warnings, source=str(config))


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


@cli.command("export-head")
@click.argument("finetuned", type=click.Path(path_type=Path))
@click.option("--head", "head_name", required=True, help="The head to export, e.g. category.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New directory for the export.")
def export_head_command(finetuned: Path, head_name: str, out: Path) -> None:
    """One head of a fine-tuned directory as a plain AutoModelForSequenceClassification checkpoint."""
    from sec_cybert.export import export_head

    click.echo(f"written: {export_head(finetuned, head_name, out)} (AutoModelForSequenceClassification.from_pretrained loads it)")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--repo", required=True, help="The hub model repo, ORG/NAME.")
@click.option("--public", is_flag=True, help="Create the repo public (default: private).")
def push(directory: Path, repo: str, public: bool) -> None:
    """Upload a saved directory (a stage's output or an export) to the Hugging Face hub."""
    from sec_cybert.modelcard import push_to_hub

    click.echo(f"pushed: {push_to_hub(directory, repo, private=not public)}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """One page on RUN_DIR: each stage's data, metrics and loss/LR curves, and the ablation."""
    from sec_cybert.report import build_report

    path = build_report(run_dir)
    click.echo(f"written: {path} and {path.with_suffix('.html')}")


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
