"""CONFIG or ``--config CONFIG``: every command that reads a config takes it either way.

The reference procedure's commands (``dapt``, ``tapt``, ``finetune``) were written with
``--config``; ``run``, ``plan``, ``ablate`` and ``validate`` with an argument. Both work on all
of them, followed by ``KEY.PATH=VALUE`` overrides; two different configs are a usage error.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click


def chosen_config(
    given: Path | None, option: Path | None, overrides: tuple[str, ...]
) -> tuple[Path, tuple[str, ...]]:
    """CONFIG or ``--config CONFIG`` (either, on every command that takes one). After
    ``--config``, the first argument is an override unless it names a file or a ``.yaml``."""
    if option is None:
        if given is None:
            raise click.UsageError("missing CONFIG: give the config file, e.g. `sec-cybert run CONFIG.yaml`")
        return given, overrides
    names_a_config = given is not None and (given.exists() or given.suffix in (".yaml", ".yml"))
    if given is not None and not names_a_config:
        return option, (str(given), *overrides)
    if given is not None and given != option:
        raise click.UsageError(
            f"two configs, {given} and --config {option}: give the config once, as CONFIG or as --config"
        )
    return option, overrides


def config_input(command: Any) -> Any:
    """CONFIG, the ``KEY.PATH=VALUE`` overrides after it, and ``--config CONFIG`` as the same."""

    @functools.wraps(command)
    def resolved(config_file: Path | None, config_option: Path | None, overrides: tuple[str, ...], **options: Any) -> Any:
        config, overrides = chosen_config(config_file, config_option, overrides)
        return command(config=config, overrides=overrides, **options)

    resolved = click.option(
        "--config", "config_option", type=click.Path(path_type=Path), help="The config file (the same as CONFIG)."
    )(resolved)
    resolved = click.argument("overrides", nargs=-1, metavar="[KEY.PATH=VALUE]...")(resolved)
    return click.argument("config_file", metavar="CONFIG", required=False, type=click.Path(path_type=Path))(resolved)
