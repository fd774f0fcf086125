"""A loaded config against the encoder it names, checked before anything trains.

Where the encoder's ``config.json`` can be read without a download -- a local checkpoint
directory, or a hub checkpoint already in the hub cache -- a stage's sequence length must fit
its ``max_position_embeddings``: beyond it an absolute-position model indexes past its table and a
rotary one runs at lengths it never trained on. A registered encoder that builds its checkpoint
at run time (``tiny-modernbert``) is checked against the ``max_position_embeddings`` its
``encoder_options`` give, or its factory's default. A local-looking encoder path (``./x``, ``/x``,
``a/b/c``: anything that is not a hub id) must be a directory. A hub id that is not cached is not
checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sec_cybert.core.encoders import HUB_ALIASES
from sec_cybert.errors import ConfigError

if TYPE_CHECKING:
    from sec_cybert.core.components import Stage
    from sec_cybert.plugins.registry import Registry

#: A hub model id (``org/name`` or a bare name); anything else names a local path.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def check_encoder(pipeline: Any, source: str | None = None) -> None:
    """Raise one ConfigError listing :func:`encoder_problems` of ``pipeline`` (a ``Pipeline``; typed
    loosely: host.pipeline imports this module), if it has any."""
    problems = encoder_problems(pipeline.encoder, pipeline.stages, pipeline.registry, options=pipeline.encoder_options)
    if problems:
        raise ConfigError(problems, source=source)


def encoder_problems(
    encoder: str, stages: Sequence[Stage], registry: Registry, *, options: Mapping[str, Any] | None = None
) -> list[str]:
    """One line per problem, ``key.path: message`` as the config loader writes them."""
    where = "max_position_embeddings in its config.json"
    if encoder in registry.entries["encoder"]:
        if encoder in HUB_ALIASES:
            positions = _max_positions(_cached_hub_config(HUB_ALIASES[encoder]))
        else:
            positions, where = _built_positions(registry.factory("encoder", encoder), options or {})
        return _too_long(encoder, stages, positions, where)
    if Path(encoder).exists() or not HUB_ID.match(encoder):
        path = Path(encoder)
        if not path.exists():
            return [
                f"encoder: directory {encoder!r} does not exist; give a checkpoint directory (a stage's "
                "output, or one save_pretrained wrote), a hub id (org/name) or a registered encoder"
            ]
        if not path.is_dir():
            return [f"encoder: {encoder!r} is a file, not a checkpoint directory"]
        config_file = path / "config.json"
    else:
        config_file = _cached_hub_config(encoder)
    return _too_long(encoder, stages, _max_positions(config_file), where)


def _too_long(encoder: str, stages: Sequence[Stage], positions: int | None, where: str) -> list[str]:
    if positions is None:
        return []
    return [
        f"{key}: got {length}; the encoder {encoder!r} takes at most {positions} positions ({where})"
        for key, length in sequence_lengths(stages)
        if length > positions
    ]


def _built_positions(factory: Any, options: Mapping[str, Any]) -> tuple[int | None, str]:
    """The positions a registered random-init encoder will be built with: its option, else its
    factory's default; None when the factory takes no such option."""
    import inspect

    if "max_position_embeddings" in options:
        value, where = options["max_position_embeddings"], "encoder_options.max_position_embeddings"
    else:
        try:
            parameter = inspect.signature(factory).parameters.get("max_position_embeddings")
        except (TypeError, ValueError):
            parameter = None
        if parameter is None or parameter.default is inspect.Parameter.empty:
            return None, ""
        value, where = parameter.default, "the default max_position_embeddings of the encoder"
    valid = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return (value if valid else None), where


def sequence_lengths(stages: Sequence[Stage]) -> Iterator[tuple[str, int]]:
    """``(key path, tokens)`` of each stage's longest sequence: its chunker's ``seq_len`` or
    ``max_length``, or its own ``max_length`` (a fine-tune's)."""
    for index, stage in enumerate(stages):
        owners = [("chunker.", getattr(stage, "chunker", None)), ("", stage)]
        for prefix, owner in owners:
            for key in ("seq_len", "max_length"):
                value = getattr(owner, key, None)
                if isinstance(value, int) and not isinstance(value, bool):
                    yield f"stages[{index}].{prefix}{key}", value
                    break


def _cached_hub_config(repo_id: str) -> Path | None:
    """The hub checkpoint's config.json if the hub cache holds it; never a download."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id, or no cache: nothing to check against
        return None
    return Path(found) if isinstance(found, str) else None


def _max_positions(config_file: Path | None) -> int | None:
    if config_file is None or not config_file.is_file():
        return None
    try:
        value = json.loads(config_file.read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError, AttributeError):
        return None  # loading the checkpoint will say what is wrong with it
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
