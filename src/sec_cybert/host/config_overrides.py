"""``KEY.PATH=VALUE`` overrides: applied to a config's mapping before validation, so the loader
checks an override exactly as it checks the file, and marks the problems an override caused."""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Mapping
from typing import Any

import attrs
import yaml

from sec_cybert.errors import ConfigError
from sec_cybert.host.config_yaml import parse

_INDEX = re.compile(r"\[(\d+)\]")


@attrs.frozen
class Override:
    """One ``KEY.PATH=VALUE`` argument: the keys and list indices it walks, and its value as YAML
    reads it (``5``, ``0.15``, ``true``, ``null``, ``[1, 2]``, ``{kind: token}``)."""

    text: str
    keys: tuple[str | int, ...]
    value: Any

    @property
    def key_path(self) -> str:
        """The path as the loader's problems spell it: ``stages[0].training.max_steps``."""
        path = ""
        for key in self.keys:
            path = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        return path


def parse_override(text: str) -> Override:
    """Read one ``KEY.PATH=VALUE`` argument; list indices are numbers (``stages.0`` or ``stages[0]``)."""
    example = "e.g. stages.0.training.max_steps=5 or seed=3"
    key, equals, raw = text.partition("=")
    if not equals:
        raise ConfigError(f"override {text!r}: expected KEY.PATH=VALUE ({example})")
    keys: list[str | int] = []
    for part in _INDEX.sub(r".\1", key.strip()).split("."):
        if not part.strip():
            raise ConfigError(f"override {text!r}: {key.strip()!r} is not a key path ({example})")
        keys.append(int(part) if part.isdigit() else part.strip())
    try:
        value = parse(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(
            f"override {text!r}: the value is not valid YAML ({' '.join(str(problem).split())}); "
            "e.g. ablation_seeds=[1,2] or 'stages.1.masker={kind: token, probability: 0.15}'"
        ) from None
    return Override(text=text, keys=tuple(keys), value=value)


def apply_overrides(data: Mapping[str, Any], overrides: typing.Iterable[str | Override]) -> dict[str, Any]:
    """A copy of the config mapping ``data`` with each ``KEY.PATH=VALUE`` applied, in order.

    Applied before validation, so the loader checks an override exactly as it checks the file.
    A key a mapping lacks is added (the loader then reports it if it is unknown). A malformed
    argument, a list index out of range, or a path through a value that is not a mapping or a
    list is a problem naming the argument; every one is raised together as a :class:`ConfigError`.
    """
    result = copy.deepcopy(dict(data))
    problems = []
    for item in overrides:
        try:
            _apply(result, item if isinstance(item, Override) else parse_override(item))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return result


def _apply(root: dict[str, Any], override: Override) -> None:
    node: Any = root
    for depth, key in enumerate(override.keys):
        walked = Override(text=override.text, keys=override.keys[:depth], value=None).key_path
        last = depth == len(override.keys) - 1
        if isinstance(node, list):
            if not isinstance(key, int):
                raise ConfigError(
                    f"override {override.text!r}: {walked} is a list; index it with a number "
                    f"(0 to {len(node) - 1}), not {key!r}"
                )
            if key >= len(node):
                held = f"0 to {len(node) - 1}" if node else "it is empty"
                raise ConfigError(
                    f"override {override.text!r}: index {key} is out of range: {walked} holds "
                    f"{len(node)} item{'s' if len(node) != 1 else ''} ({held})"
                )
        elif isinstance(node, dict):
            key = str(key)
            if key not in node and not last:
                following = override.keys[depth + 1]
                if isinstance(following, int):
                    whole = Override(text=override.text, keys=override.keys[: depth + 1], value=None).key_path
                    raise ConfigError(
                        f"override {override.text!r}: {whole} is not in the config, so it has no item "
                        f"{following}; give the whole list, e.g. {whole}=[...]"
                    )
                node[key] = {}
        else:
            raise ConfigError(
                f"override {override.text!r}: {walked} is {node!r}, not a mapping or a list, "
                f"so it has no {'item' if isinstance(key, int) else 'key'} {key!r}"
            )
        if last:
            node[key] = copy.deepcopy(override.value)
        else:
            node = node[key]


def override_problems(error: ConfigError, overrides: typing.Iterable[str | Override]) -> ConfigError:
    """``error`` with each problem inside an overridden key path marked with the argument that set
    it, since the file does not hold that value."""
    parsed = [item if isinstance(item, Override) else parse_override(item) for item in overrides]
    lines = []
    for line in error.problems:
        setters = [o.text for o in parsed if any(line.startswith(o.key_path + t) for t in (":", ".", "["))]
        lines.append(f"{line} (set by the override {setters[-1]})" if setters else line)
    return ConfigError(lines, source=error.source)
