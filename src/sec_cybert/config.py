"""YAML configs to typed components, reporting every problem at once.

Only this module touches raw YAML. It walks the attrs classes the plugins registered: a field
typed as a component Protocol (``corpus``, ``chunker``, ``masker``) is a mapping whose ``kind``
names a registered component; any other attrs class is a nested mapping; leaves are converted
by cattrs. Every problem is collected -- wrong type, value outside the allowed range, unknown
key, missing key, unknown component name -- each with its key path, the bad value and what is
allowed, and raised together as one :class:`ConfigError`.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml

from sec_cybert.components import Chunker, CorpusSource, Masker
from sec_cybert.corpus.contamination import ContaminationPolicy
from sec_cybert.errors import ConfigError, SecCybertError

#: Fields typed with one of these Protocols are built from ``{kind: NAME, ...}`` via the registry.
COMPONENT_FIELD_KINDS: dict[Any, str] = {CorpusSource: "corpus", Chunker: "chunker", Masker: "masker"}

_converter = cattrs.Converter(forbid_extra_keys=True)


#: A pipeline config is a page of YAML; anything this large is some other file passed by mistake.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


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
        data = yaml.safe_load(text)
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


# -- KEY.PATH=VALUE overrides ------------------------------------------------------------------

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
            path = f"{path}[{key}]" if isinstance(key, int) else _join(path, key)
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
        value = yaml.safe_load(raw)
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


@attrs.frozen
class PipelineSettings:
    """The top-level keys of a pipeline config, beside ``stages`` and ``tracking`` (both lists of
    registered components, built by :func:`build_component`)."""

    encoder: str
    hardware: str = "auto"
    seed: int = 42
    encoder_options: dict[str, Any] = attrs.field(factory=dict)
    output_dir: Path | None = None
    ablation_seeds: list[int] | None = None
    contamination: ContaminationPolicy = attrs.field(factory=ContaminationPolicy)
    on_input_change: typing.Literal["refuse", "redo"] = attrs.field(
        default="refuse", validator=attrs.validators.in_(("refuse", "redo"))
    )
    #: The ``KEY.PATH=VALUE`` arguments the command line applied to the file (:func:`apply_overrides`),
    #: in order: set by the CLI, for ``lineage.json``; not something to write in a config.
    overrides: list[str] | None = None

    def __config_check__(self, registry: Any) -> list[tuple[str, str]]:
        """``encoder_options`` against the registered encoder's options, when the config is loaded
        rather than when the encoder is built (after the contamination check, before training)."""
        from sec_cybert.encoders import encoder_option_problems, option_path

        entries = getattr(registry, "entries", {}).get("encoder", {})
        if self.encoder not in entries:
            return []  # a path or hub id; the Pipeline refuses encoder_options for those
        factory = registry.factory("encoder", self.encoder)
        problems = encoder_option_problems(self.encoder, factory, self.encoder_options)
        return [(option_path(key), message) for key, message in problems]


@attrs.define
class Problems:
    """Collects problems while a config is walked."""

    lines: list[str] = attrs.field(factory=list)

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path or '<top level>'}: {message}")


def describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [describe_type(a) for a in args if a is not type(None)]
        suffix = " or null" if type(None) in args else ""
        return " or ".join(parts) + suffix
    if origin in (list, tuple) and args:
        return f"a list of {describe_type(args[0])}"
    if origin in (dict, Mapping):
        return "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _leaf(value: Any, tp: Any, path: str, problems: Problems) -> Any:
    """Convert a scalar (or list/dict of scalars) strictly: "yes" is not a bool, True is not an int."""
    converted = _strict(value, tp)
    if converted is attrs.NOTHING:
        problems.add(path, f"got {value!r}; expected {describe_type(tp)}")
    return converted


def _strict(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or (origin is not None and origin.__name__ == "UnionType"):
        if value is None:
            return None if type(None) in args else attrs.NOTHING
        for option in (a for a in args if a is not type(None)):
            converted = _strict(value, option)
            if converted is not attrs.NOTHING:
                return converted
        return attrs.NOTHING
    if origin is typing.Literal:
        return value if value in args else attrs.NOTHING
    if tp is bool:
        return value if isinstance(value, bool) else attrs.NOTHING
    if tp is int:
        if isinstance(value, bool):
            return attrs.NOTHING
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else attrs.NOTHING
    if tp is float:
        if isinstance(value, bool):
            return attrs.NOTHING
        if isinstance(value, (int, float)):
            return float(value)
        # YAML 1.1 reads 5e-5 (no dot) as a string; users mean the number.
        try:
            return float(value) if isinstance(value, str) else attrs.NOTHING
        except ValueError:
            return attrs.NOTHING
    if tp is str:
        return value if isinstance(value, str) else attrs.NOTHING
    if tp is Path:
        return Path(value) if isinstance(value, (str, Path)) else attrs.NOTHING
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return attrs.NOTHING
        items = [_strict(item, args[0] if args else Any) for item in value]
        return attrs.NOTHING if any(item is attrs.NOTHING for item in items) else origin(items)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return dict(value) if isinstance(value, Mapping) else attrs.NOTHING
    try:
        return _converter.structure(value, tp)
    except Exception:
        return attrs.NOTHING


def _component_kind(tp: Any) -> str | None:
    return COMPONENT_FIELD_KINDS.get(tp) if isinstance(tp, type) else None


def build_component(kind: str, data: Any, path: str, registry: Any, problems: Problems) -> Any:
    """Build a registered component from ``{kind: NAME, ...params}``."""
    if not isinstance(data, Mapping) or "kind" not in data:
        known = ", ".join(registry.names(kind))
        problems.add(path, f"got {data!r}; expected a mapping with 'kind' naming a {kind} ({known})")
        return attrs.NOTHING
    name = data["kind"]
    if name not in registry.entries[kind]:
        known = ", ".join(registry.names(kind))
        close = difflib.get_close_matches(str(name), registry.names(kind), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.add(f"{path}.kind", f"unknown {kind} {name!r}{hint}; known: {known}")
        return attrs.NOTHING
    params = {k: val for k, val in data.items() if k != "kind"}
    return build(registry.factory(kind, name), params, path, registry, problems)


def build(cls: type, data: Any, path: str, registry: Any, problems: Problems) -> Any:
    """Build attrs class ``cls`` from ``data``, recording every problem instead of stopping."""
    if not isinstance(data, Mapping):
        problems.add(path, f"got {data!r}; expected a mapping of {cls.__name__} settings")
        return attrs.NOTHING
    fields = attrs.fields(attrs.resolve_types(cls))
    allowed = [f.alias for f in fields if f.init]
    before = len(problems.lines)
    for key in data:
        if key not in allowed:
            close = _suggest(str(key), allowed)
            hint = f"did you mean {close!r}? " if close else ""
            problems.add(_join(path, key), f"unknown key; {hint}allowed: {', '.join(allowed)}")
    kwargs: dict[str, Any] = {}
    for field in fields:
        if not field.init:
            continue
        key_path = _join(path, field.alias)
        if field.alias not in data:
            if field.default is attrs.NOTHING:
                problems.add(key_path, f"missing; expected {describe_type(field.type)}")
            continue
        value = build_value(field.type, data[field.alias], key_path, registry, problems)
        if value is attrs.NOTHING:
            continue
        if field.converter is not None:
            try:
                value = field.converter(value)
            except Exception as exc:
                problems.add(key_path, f"got {data[field.alias]!r}; {exc}")
                continue
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except (ValueError, TypeError, SecCybertError) as exc:
                problems.add(key_path, _bad_value(data[field.alias], _validator_message(exc)))
                continue
        kwargs[field.alias] = value
    if len(problems.lines) > before:
        return attrs.NOTHING
    try:
        built = cls(**kwargs)
    except (ValueError, TypeError, SecCybertError) as exc:
        problems.add(path, _validator_message(exc))
        return attrs.NOTHING
    # A settings class may check what needs the registry (PipelineSettings: the encoder's options).
    config_check = getattr(cls, "__config_check__", None)
    found = config_check(built, registry) if config_check is not None and registry is not None else []
    for key, message in found:
        problems.add(_join(path, key), message)
    return attrs.NOTHING if found else built


def build_value(tp: Any, value: Any, path: str, registry: Any, problems: Problems) -> Any:
    component_kind = _component_kind(tp)
    if component_kind:
        return build_component(component_kind, value, path, registry, problems)
    if attrs.has(tp):
        return build(tp, _without_own_kind(tp, value, path, registry, problems), path, registry, problems)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple) and args and (attrs.has(args[0]) or _component_kind(args[0])):
        if not isinstance(value, list):
            problems.add(path, f"got {value!r}; expected a list")
            return attrs.NOTHING
        items = [
            build_value(args[0], item, f"{path}[{i}]", registry, problems) for i, item in enumerate(value)
        ]
        return attrs.NOTHING if attrs.NOTHING in items else (tuple(items) if origin is tuple else items)
    if origin is typing.Union and value is not None:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and attrs.has(inner[0]):
            return build(inner[0], value, path, registry, problems)
    return _leaf(value, tp, path, problems)


def _without_own_kind(tp: type, value: Any, path: str, registry: Any, problems: Problems) -> Any:
    """A nested setting of a registered class may carry its own ``kind`` (``unstructure`` writes
    it, so a recorded config pastes back): drop it when it names that class."""
    if not isinstance(value, Mapping) or "kind" not in value or registry is None:
        return value
    own = registered_name(tp, registry)
    if own is None:
        return value
    if value["kind"] != own:
        problems.add(_join(path, "kind"), f"got {value['kind']!r}; this setting is a {own!r}: drop the key")
    return {k: v for k, v in value.items() if k != "kind"}


def _suggest(key: str, allowed: list[str]) -> str | None:
    """The allowed key a typo most likely meant: a close spelling, or the initials (lr -> learning_rate)."""
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return close[0]
    initials = [name for name in allowed if "".join(part[0] for part in name.split("_") if part) == key]
    return initials[0] if len(initials) == 1 else None


def _bad_value(value: Any, message: str) -> str:
    """'got <value>; <why>' unless the message already shows the value."""
    for shown in (f": {value!r}", f": {value}"):
        if message.endswith(shown):
            message = message[: -len(shown)]
    return message if repr(value) in message or str(value) in message else f"got {value!r}; {message}"


def _validator_message(exc: BaseException) -> str:
    """attrs' validator messages are long tuples of internals; keep the readable part."""
    message = str(exc.args[0]) if exc.args else str(exc)
    if message.startswith("'") and " must be " in message:
        message = message.split(" ", 1)[1]
    return message


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def check(problems: Problems, source: str | None = None) -> None:
    if problems.lines:
        raise ConfigError(problems.lines, source=source)


def unstructure(obj: Any, registry: Any = None, *, omit_defaults: bool = False) -> Any:
    """The inverse of :func:`build`: plain data that ``build`` accepts again.

    Registered components get their ``kind`` back, so a stage's resolved config in
    ``lineage.json`` can be pasted into a YAML file. ``omit_defaults`` leaves out settings equal
    to their default (what a run's fingerprint hashes). ``registry`` names the components; the
    process-wide one by default.
    """
    if registry is None:
        from sec_cybert.plugins import get_registry

        registry = get_registry()
    if attrs.has(type(obj)):
        data: dict[str, Any] = {}
        kind = registered_name(type(obj), registry)
        if kind is not None:
            data["kind"] = kind
        for field in attrs.fields(type(obj)):
            if not field.init:
                continue
            value = getattr(obj, field.name)
            if omit_defaults and _is_default(field, value):
                continue
            data[field.alias] = unstructure(value, registry, omit_defaults=omit_defaults)
        return data
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [unstructure(item, registry, omit_defaults=omit_defaults) for item in obj]
    if isinstance(obj, Mapping):
        return {str(k): unstructure(val, registry, omit_defaults=omit_defaults) for k, val in obj.items()}
    return obj


def _is_default(field: Any, value: Any) -> bool:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory() if not default.takes_self else attrs.NOTHING
    if default is attrs.NOTHING:
        return False
    if field.converter is not None:
        try:
            default = field.converter(default)
        except Exception:
            return False
    try:
        return bool(value == default)
    except Exception:
        return False


#: Component kinds whose classes a config names with ``kind:`` (hardware profiles and encoders
#: are named by a string instead).
NAMED_BY_KIND = ("corpus", "chunker", "masker", "stage", "tracker")


def registration_of(cls: type, registry: Any) -> Any:
    """The registration whose factory is ``cls``, or ``None`` (a class used from Python only)."""
    for registration in registry:
        if registration.factory is cls and registration.kind in NAMED_BY_KIND:
            return registration
    return None


def registered_name(cls: type, registry: Any) -> str | None:
    registration = registration_of(cls, registry)
    return registration.name if registration is not None else None


def registrations_used(obj: Any, registry: Any) -> list[Any]:
    """Every registered component in ``obj`` and the components nested in it (a stage's corpus,
    chunker, masker ...), each once: what ``lineage.json`` names the providing plugins of."""
    found: list[Any] = []

    def walk(value: Any) -> None:
        if attrs.has(type(value)):
            registration = registration_of(type(value), registry)
            if registration is not None and registration not in found:
                found.append(registration)
            for field in attrs.fields(type(value)):
                walk(getattr(value, field.name))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(obj)
    return found


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
