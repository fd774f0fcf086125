"""YAML configs to typed components, reporting every problem at once.

Only the config modules touch raw YAML: :mod:`sec_cybert.host.config_yaml` reads a file,
:mod:`sec_cybert.host.config_overrides` applies ``KEY.PATH=VALUE`` arguments, and
:mod:`sec_cybert.host.config_structure` builds the attrs classes the plugins registered through
cattrs -- a field typed as a component Protocol (``corpus``, ``chunker``, ``masker``) is a
mapping whose ``kind`` names a registered component; any other attrs class is a nested
mapping. Every problem is collected -- wrong type, value outside the allowed range, unknown key,
missing key, unknown component name -- each with its key path, the bad value and what is
allowed, and raised together as one :class:`ConfigError`. This module holds the top-level
settings and re-exports the loader's names.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from sec_cybert.corpus.contamination import ContaminationPolicy
from sec_cybert.errors import ConfigError
from sec_cybert.host.config_overrides import Override, apply_overrides, override_problems, parse_override
from sec_cybert.host.config_structure import (
    COMPONENT_FIELD_KINDS,
    NAMED_BY_KIND,
    Problems,
    build,
    build_component,
    build_value,
    check,
    describe_type,
    registered_name,
    registration_of,
    registrations_used,
    unstructure,
)
from sec_cybert.host.config_yaml import MAX_CONFIG_BYTES, load_yaml

if TYPE_CHECKING:
    from sec_cybert.plugins.registry import Registry

__all__ = [
    "COMPONENT_FIELD_KINDS",
    "MAX_CONFIG_BYTES",
    "NAMED_BY_KIND",
    "Override",
    "PipelineSettings",
    "Problems",
    "apply_overrides",
    "build",
    "build_component",
    "build_value",
    "check",
    "describe_type",
    "load_yaml",
    "override_problems",
    "parse_override",
    "registered_name",
    "registration_of",
    "registrations_used",
    "resolve_config_path",
    "unstructure",
]

#: numpy (``transformers.set_seed``) takes seeds in [0, 2**32); a larger one fails only once training starts.
SEED_RANGE = (0, 2**32 - 1)
_SEEDS = f"from {SEED_RANGE[0]} to {SEED_RANGE[1]:,} (the seeds numpy takes)"


def _seed(_instance: Any, _attribute: Any, value: int) -> None:
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise ValueError(f"got {value}; must be {_SEEDS}")


def _seeds(_instance: Any, _attribute: Any, value: list[int] | None) -> None:
    if value is not None and not all(SEED_RANGE[0] <= seed <= SEED_RANGE[1] for seed in value):
        raise ValueError(f"got {value}; each seed must be {_SEEDS}")


@attrs.frozen
class PipelineSettings:
    """The top-level keys of a pipeline config, beside ``stages`` and ``tracking`` (both lists of
    registered components, built by :func:`build_component`)."""

    encoder: str
    hardware: str = "auto"
    seed: int = attrs.field(default=42, validator=_seed)
    encoder_options: dict[str, Any] = attrs.field(factory=dict)
    output_dir: Path | None = None
    ablation_seeds: list[int] | None = attrs.field(default=None, validator=_seeds)
    contamination: ContaminationPolicy = attrs.field(factory=ContaminationPolicy)
    on_input_change: typing.Literal["refuse", "redo"] = attrs.field(
        default="refuse", validator=attrs.validators.in_(("refuse", "redo"))
    )
    #: The ``KEY.PATH=VALUE`` arguments the command line applied to the file (:func:`apply_overrides`),
    #: in order: set by the CLI, for ``lineage.json``; not something to write in a config.
    overrides: list[str] | None = None

    def __config_check__(self, registry: Registry) -> list[tuple[str, str]]:
        """``encoder_options`` against the registered encoder's options, when the config is loaded
        rather than when the encoder is built (after the contamination check, before training)."""
        from sec_cybert.core.encoders import encoder_option_problems, option_path

        entries = getattr(registry, "entries", {}).get("encoder", {})
        if self.encoder not in entries:
            return []  # a path or hub id; the Pipeline refuses encoder_options for those
        factory = registry.factory("encoder", self.encoder)
        problems = encoder_option_problems(self.encoder, factory, self.encoder_options)
        return [(option_path(key), message) for key, message in problems]


def resolve_config_path(path: Path | str) -> Path:
    """``path`` itself when it exists, else the config of that name shipped in the package.

    So ``--config configs/dapt/modernbert.yaml`` works in a checkout and in a plain install.
    """
    path = Path(path)
    if path.exists():
        return path
    from importlib import resources

    relative = path.as_posix().removeprefix("configs/")
    shipped = resources.files("sec_cybert.configs").joinpath(relative)
    if shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(
        f"config file {str(path)!r} does not exist (nor is it a shipped config such as configs/dapt/modernbert.yaml)"
    )
