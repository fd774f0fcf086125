"""Reading a config file's YAML: one clear error for what is not a config, and for what YAML
accepts but a config must not hold -- a key given twice in one mapping (the last silently wins)
and aliases that expand without bound (a "billion laughs" hangs whatever walks the values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sec_cybert.errors import ConfigError

#: A pipeline config is a page of YAML; anything this large is some other file passed by mistake.
MAX_CONFIG_BYTES = 16 * 1024 * 1024

#: How many values aliases may add to a document once expanded. A config shares a training block
#: or two; a million is a bomb.
MAX_ALIAS_EXPANSION = 100_000

_MERGE = "tag:yaml.org,2002:merge"


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses repeated keys and aliases that expand beyond
    :data:`MAX_ALIAS_EXPANSION` values (or refer to a value that holds them)."""

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
                continue  # a merged mapping's keys may be overridden: that is what merging is for
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}); "
                    "YAML would keep the last silently: keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases add more than MAX_ALIAS_EXPANSION values, or loop."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a value that holds it; write the value out", node.start_mark
            )
        open_nodes.add(key)
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        sizes[key] = 1 + sum(size(child) for child in children)
        open_nodes.discard(key)
        return sizes[key]

    added = size(root) - len(sizes)
    if added > MAX_ALIAS_EXPANSION:
        raise yaml.composer.ComposerError(
            None,
            None,
            f"its aliases expand to {added:,} more values, beyond the {MAX_ALIAS_EXPANSION:,} a config "
            "may hold (a YAML alias bomb?); write the values out, or use fewer aliases",
            None,
        )


def parse(text: str) -> Any:
    """``text`` read as YAML by :class:`ConfigLoader`."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Read a YAML mapping; a missing, binary or unparsable file is a one-line ConfigError."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory; give the path of a YAML config file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    not_a_config = "not a YAML config: give the pipeline's .yaml file, not a model or data file"
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{size:,} bytes, too large to be a config; {not_a_config}", source=str(path))
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror or exc})", source=str(path)) from None
    if b"\x00" in raw:
        raise ConfigError(f"a binary file (it holds NUL bytes), {not_a_config}", source=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): save the config as UTF-8, "
            "or give the pipeline's .yaml file if this is a model or data file",
            source=str(path),
        ) from None
    try:
        data = parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
            line = text.count("\n", 0, exc.position) + 1
            where, problem = f" at line {line}", f"control character #x{exc.character:04x} is not allowed"
        else:
            problem = getattr(exc, "problem", None) or exc
        raise ConfigError(
            f"not valid YAML{where}: {' '.join(str(problem).split())}", source=str(path)
        ) from None
    except RecursionError:
        raise ConfigError("not valid YAML: nested too deeply to be a config", source=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys to values", source=str(path))
    return data
