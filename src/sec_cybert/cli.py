"""The ``sec-cybert`` command line.

stdout carries a command's result (a table, ``done: ...``) and nothing else; log lines go to
stderr, configured here once (:mod:`sec_cybert.core.log_setup`), what libraries print included.
Every user error (config, data, plugin, hardware) is printed as ``error: <what and how to fix>``
on stderr, one line per problem, with exit status 2; never a traceback. With ``--log-format
json`` every stderr line is a JSON object, errors included (``"event": "error"``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import structlog

from sec_cybert.app.cli_config import config_input as _config_input
from sec_cybert.app.tool_commands import export_head_command, plugins, push, report, split
from sec_cybert.core import log_setup
from sec_cybert.core.distributed import is_main_process
from sec_cybert.core.log_setup import library_output
from sec_cybert.errors import ConfigError, Preempted, SecCybertError

log = structlog.get_logger(__name__)

USER_ERROR_EXIT = 2
#: 128 + SIGTERM, what a shell reports for a process SIGTERM ended: schedulers treat it as preempted.
PREEMPTED_EXIT = 143


PROGRESS_ENV = log_setup.PROGRESS_ENV
configure_logging = log_setup.configure_logging  # its old home: scripts and tests import it from here


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="More output: -v debug logs and the libraries' own progress bars."
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors, and no progress bars.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True)
@click.version_option(package_name="sec-cybert")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, log_format: str) -> None:
    """Domain- and task-adaptive pretraining of encoders, and the fine-tuning that follows."""
    configure_logging(-1 if quiet else verbose, log_format)
    if log_format == "json":
        # Whatever a command or a library writes on stderr, as JSON events too.
        ctx.with_resource(library_output(stdout=False))


def _load(config: Path, hardware: str | None, overrides: tuple[str, ...] = ()) -> Any:
    """CONFIG as a RunConfig: ``--hardware`` and then each ``KEY.PATH=VALUE`` override applied to
    the file's mapping before it is validated, so an override is checked like the file."""
    from sec_cybert.host.config import apply_overrides, load_yaml, override_problems, resolve_config_path
    from sec_cybert.host.config_encoder import check_encoder
    from sec_cybert.host.pipeline import load_run_config

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


def _check_plan(run_config: Any, config: Path, strict: bool) -> None:
    """``--strict``: plan the run before it starts and refuse what makes it degenerate.

    The plan reads and tokenizes the data as the run will (``sec-cybert plan``), which at DAPT
    scale is minutes: without ``--strict`` each stage checks the same numbers as it starts, for
    free, and warns. The plan's log lines are left out, since the run writes the same ones.
    """
    from sec_cybert.core.distributed import world_size
    from sec_cybert.host.planner import plan_pipeline
    from sec_cybert.planning.plan import degenerate_problems

    started = time.perf_counter()
    try:
        with log_setup.quiet_logs():
            run_config.pipeline.hardware_profile()  # a GPU profile without a GPU fails now, not after the plan
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
            log.warning("degenerate run", problem=line)


def _run(
    config: Path,
    out: Path | None,
    hardware: str | None,
    ablate: bool,
    expect_variant: bool | None = None,
    overrides: tuple[str, ...] = (),
    strict: bool = False,
) -> None:
    with library_output():
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
        table = result.ablation(run_config.ablation_seeds) if ablate else None
    if is_main_process():
        if table is not None:
            click.echo(table.to_markdown())
        click.echo(f"done: {run_dir} (lineage in {run_dir / 'lineage.json'})")


_out_option = click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default: output_dir of the config)."
)
_hardware_option = click.option("--hardware", help="Hardware profile name or 'auto' (overrides the config).")
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
@_config_input
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
@_config_input
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
@_config_input
@_out_option
@_hardware_option
@_strict_option
def tapt(
    config: Path, overrides: tuple[str, ...], out: Path | None, hardware: str | None, strict: bool
) -> None:
    _run(config, out, hardware, ablate=False, expect_variant=True, overrides=overrides, strict=strict)


@cli.command(help="Fine-tune classifiers from a fine-tune config." + _OVERRIDES_HELP)
@_config_input
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
@_config_input
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
    from sec_cybert.results.ablation_intervals import Settings

    if seeds and seed_count:
        raise click.UsageError("give --seeds or --seed-count, not both")
    with library_output():
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
@_config_input
def validate(config: Path, overrides: tuple[str, ...]) -> None:
    from sec_cybert.host.config import registered_name

    with library_output():
        run_config = _load(config, None, overrides)
    registry = run_config.pipeline.registry
    stages = ", ".join(
        f"{s.name} ({registered_name(type(s), registry) or type(s).__name__})" for s in run_config.pipeline.stages
    )
    applied = f" with {' '.join(overrides)}" if overrides else ""
    click.echo(f"{config}: valid{applied}; stages: {stages}")


@cli.command(
    help="Print what a run of CONFIG will do: data kept, sequences, steps, warmup, estimated time, and "
    "a warning for each thing that makes it degenerate (--strict: exit 2 on them)." + _OVERRIDES_HELP
)
@_config_input
@_hardware_option
@click.option(
    "--world-size", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel processes."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_strict_option
def plan(
    config: Path, overrides: tuple[str, ...], hardware: str | None, world_size: int, as_json: bool, strict: bool
) -> None:
    from sec_cybert.host.planner import plan_pipeline

    with library_output():
        result = plan_pipeline(_load(config, hardware, overrides).pipeline, world_size=world_size)
    refused = strict and bool(result.warnings)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        # Refused, each problem is said once, as an error line, not also as a warning of the plan.
        shown = {f"warning: {line}" for line in result.warnings} if refused else set()
        click.echo("\n".join(line for line in result.to_text().split("\n") if line not in shown).rstrip())
    if refused:
        raise ConfigError(result.warnings, source=str(config))


@cli.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory for data, checkpoints and tables.",
)
@_hardware_option
@click.option("--seed", default=42, show_default=True, help="Seed of the run; the ablation fine-tunes with it and the next two.")
def demo(out: Path, hardware: str | None, seed: int) -> None:
    """DAPT -> TAPT -> fine-tune and the ablation, on the embedded corpus with a tiny model (CPU, no downloads)."""
    from sec_cybert.app.demo import run_demo

    with library_output():
        table = run_demo(out, hardware=hardware or "auto", seed=seed)
    click.echo(table.to_markdown())
    click.echo(f"done: {out} (ablation.md, ablation.json, lineage.json; config in {out / 'demo.yaml'})")


for _command in (split, export_head_command, push, report, plugins):
    cli.add_command(_command)


def _add_plugin_commands() -> None:
    from sec_cybert.plugins.registry import get_plugin_manager

    get_plugin_manager().hook.register_commands(cli=cli)


def _tell(level: str, event: str, problem: str, plain: str) -> None:
    """One line for the user on stderr: ``plain``, or with ``--log-format json`` a JSON event
    (``{"event": "error", "problem": ..., "level": "error"}``), like every other line there."""
    if log_setup.settings.format == "json":
        getattr(log, level)(event, problem=problem)
    else:
        click.echo(plain, err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line each and exit status 2."""
    try:
        _add_plugin_commands()
        cli.main(args=argv, prog_name="sec-cybert", standalone_mode=False)
    except Preempted as exc:
        _tell("warning", "stopped", str(exc), f"stopped: {exc}")
        return PREEMPTED_EXIT
    except SecCybertError as exc:
        lines = exc.problems if isinstance(exc, ConfigError) and len(exc.problems) > 1 else [str(exc)]
        prefix = (
            f"{exc.source}: " if isinstance(exc, ConfigError) and exc.source and len(exc.problems) > 1 else ""
        )
        for line in lines:
            _tell("error", "error", f"{prefix}{line}", f"error: {prefix}{line}")
        return USER_ERROR_EXIT
    except (click.exceptions.Abort, KeyboardInterrupt):
        message = "interrupted; run the same command again to resume from the last checkpoint"
        _tell("warning", "interrupted", message, message)
        return 130
    except click.ClickException as exc:
        if log_setup.settings.format == "json":
            _tell("error", "error", exc.format_message(), "")
        else:
            exc.show()
        return exc.exit_code
    finally:
        log_setup.unconfigure_logging()  # called from Python, leave the process's logging as it was
    return 0


if __name__ == "__main__":
    sys.exit(main())
