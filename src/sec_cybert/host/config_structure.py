"""Plain config data to typed components and back, through one cattrs converter per registry.

cattrs walks the attrs classes, collecting every field's error (and the unknown keys) in a
``ClassValidationError``, a list's in an ``IterableValidationError``. Our hooks add: the
``kind`` -> registry lookup for component fields (``corpus``, ``chunker``, ``masker``, a stage,
a tracker); each field's converter and validator run as the field is structured, so every
out-of-range value is reported, not only the first (attrs stops at the first in ``__init__``);
strict leaves (``"yes"`` is no bool, ``True`` no int, an int fits 64 bits). :func:`problem_lines`
writes each error as one line: key path, bad value, what is allowed."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from sec_cybert.core.components import Chunker, CorpusSource, Masker, Stage, Tracker
from sec_cybert.errors import ConfigError, SecCybertError
from sec_cybert.plugins.registry import Registry

#: Fields typed with one of these Protocols are built from ``{kind: NAME, ...}`` via the registry.
COMPONENT_FIELD_KINDS: dict[Any, str] = {CorpusSource: "corpus", Chunker: "chunker", Masker: "masker"}
_COMPONENT_KINDS: dict[Any, str] = {**COMPONENT_FIELD_KINDS, Stage: "stage", Tracker: "tracker"}
_PROTOCOL_OF = {kind: protocol for protocol, kind in _COMPONENT_KINDS.items()}

#: Component kinds whose classes a config names with ``kind:`` (hardware profiles and encoders
#: are named by a string instead).
NAMED_BY_KIND = ("corpus", "chunker", "masker", "stage", "tracker")

#: What torch, numpy and the Trainer hold in an integer; beyond it a value is a typo.
INT_RANGE = (-(2**63), 2**63 - 1)


class Rejected(ValueError):
    """A value its field's type does not take; ``expected`` overrides the type's description."""

    def __init__(self, value: Any, expected: str | None = None) -> None:
        super().__init__(value)
        self.value, self.expected = value, expected


class Problem(ValueError):
    """A problem whose message is complete as it is."""


def _noted(exc: Exception, key: str) -> Exception:
    """``exc`` as cattrs marks an error of attribute ``key``, so its path ends in ``.key``."""
    exc.__notes__ = [*getattr(exc, "__notes__", []), AttributeValidationNote(key, key, None)]
    return exc


def describe_type(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        suffix = " or null" if type(None) in args else ""
        return " or ".join(describe_type(a) for a in args if a is not type(None)) + suffix
    if origin in (list, tuple) and args:
        return f"a list of {describe_type(args[0])}"
    if origin in (dict, Mapping):
        return "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


# -- strict leaves -------------------------------------------------------------------------------


def _strict(accepts: Callable[[Any, Any], bool], convert: Callable[[Any], Any] = lambda v: v) -> Any:
    """A leaf hook: ``convert(value)`` if ``accepts(value, type)``, else the value is rejected."""

    def structure(value: Any, tp: Any) -> Any:
        if not accepts(value, tp):
            raise Rejected(value)
        return convert(value)

    return structure


def _int(value: Any, _: Any) -> int:
    number = int(value) if isinstance(value, float) and value.is_integer() else value
    if not isinstance(number, int) or isinstance(number, bool):
        raise Rejected(value)
    if not INT_RANGE[0] <= number <= INT_RANGE[1]:
        raise Rejected(value, f"an integer from {INT_RANGE[0]:,} to {INT_RANGE[1]:,}")
    return number


def _number(value: Any, _: Any) -> bool:
    if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string; users mean the number
        try:
            return float(value) is not None
        except ValueError:
            return False
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_LEAVES = {
    int: _int,
    float: _strict(_number, float),
    bool: _strict(lambda v, _: isinstance(v, bool)),
    str: _strict(lambda v, _: isinstance(v, str)),
    Path: _strict(lambda v, _: isinstance(v, (str, Path)), Path),
}


def _of(*kinds: Any) -> Callable[[Any], bool]:
    """A predicate for ``kinds`` and their parametrized forms (``list`` and ``list[int]``)."""
    return lambda tp: tp in kinds or typing.get_origin(tp) in kinds


def _nested(tp: Any) -> bool:
    """Whether values of ``tp`` report their own problems (key by key) rather than as one leaf."""
    return attrs.has(tp) or tp in _COMPONENT_KINDS


def _is_choice(tp: Any) -> bool:
    """A union of two or more types besides None (cattrs structures ``X | None`` itself)."""
    return _of(typing.Union, types.UnionType)(tp) and len(set(typing.get_args(tp)) - {type(None)}) > 1


def _choice_hook(tp: Any, converter: cattrs.Converter) -> Any:
    options = [(a, converter.get_structure_hook(a)) for a in typing.get_args(tp) if a is not type(None)]

    def structure(value: Any, _: Any) -> Any:
        if value is None and type(None) in typing.get_args(tp):
            return None
        for option, hook in options:
            try:
                return hook(value, option)
            except Exception:  # noqa: BLE001 - the next option may take it
                continue
        raise Rejected(value)

    return structure


def _sequence_hook(tp: Any, converter: cattrs.Converter) -> Any:
    item = (typing.get_args(tp) or (Any,))[0]
    items = list_structure_factory(list[item], converter)
    tuple_out = tp is tuple or typing.get_origin(tp) is tuple

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise Rejected(value)
        try:
            built = items(value, list[item])
        except IterableValidationError:
            if _nested(item):
                raise
            raise Rejected(value) from None  # a list of leaves is one value: say what it should be
        return tuple(built) if tuple_out else built

    return structure


# -- components and settings classes -------------------------------------------------------------


def _checked(field: attrs.Attribute, hook: Any) -> Any:
    """``hook``, then the field's converter and validator, so their failures are this field's problem."""
    if field.converter is None and field.validator is None:
        return hook

    def structure(value: Any, tp: Any) -> Any:
        built = hook(value, tp)
        if field.converter is not None:
            try:
                built = field.converter(built)
            except Exception as exc:  # noqa: BLE001 - a converter's refusal is the value's problem
                raise Problem(f"got {value!r}; {exc}") from None
        if field.validator is not None:
            try:
                field.validator(None, field, built)
            except (ValueError, TypeError, SecCybertError) as exc:
                raise Problem(_bad_value(value, validator_message(exc))) from None
        return built

    return structure


def _class_hook(cls: type, converter: cattrs.Converter, registry: Registry) -> Any:
    cls = attrs.resolve_types(cls)
    fields = [f for f in attrs.fields(cls) if f.init]
    hooks = {f.name: override(struct_hook=_checked(f, converter.get_structure_hook(f.type))) for f in fields}
    base = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, _cattrs_use_alias=True, **hooks)
    own = registered_name(cls, registry)
    config_check = getattr(cls, "__config_check__", None)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise Rejected(value, f"a mapping of {cls.__name__} settings")
        errors: list[Exception] = []
        if own is not None and "kind" in value:
            # A recorded config writes a registered class's own name beside its settings; it pastes back.
            if value["kind"] != own:
                errors.append(_noted(Problem(f"got {value['kind']!r}; this setting is a {own!r}: drop the key"), "kind"))
            value = {k: v for k, v in value.items() if k != "kind"}
        try:
            built = base(value, cls)
        except ClassValidationError as exc:
            errors.extend(exc.exceptions)
        if not errors and config_check is not None:
            # A settings class may check what needs the registry (PipelineSettings: the encoder's options).
            errors = [_noted(Problem(message), key) for key, message in config_check(built, registry)]
        if errors:
            raise ClassValidationError(f"While structuring {cls.__name__}", errors, cls)
        return built

    return structure


def _component_hook(protocol: Any, converter: cattrs.Converter, registry: Registry) -> Any:
    kind = _COMPONENT_KINDS[protocol]

    def structure(value: Any, _: Any) -> Any:
        known = registry.names(kind)
        if not isinstance(value, Mapping) or "kind" not in value:
            raise Rejected(value, f"a mapping with 'kind' naming a {kind} ({', '.join(known)})")
        name = value["kind"]
        if name not in registry.entries[kind]:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem = Problem(f"unknown {kind} {name!r}{hint}; known: {', '.join(known)}")
            raise ClassValidationError(f"While structuring a {kind}", [_noted(problem, "kind")], protocol)
        cls = registry.factory(kind, name)
        return converter.structure({k: v for k, v in value.items() if k != "kind"}, cls)

    return structure


# -- the converter ------------------------------------------------------------------------------

_converters: dict[tuple[Any, bool], cattrs.Converter] = {}


def converter_for(registry: Registry, *, omit_defaults: bool = False) -> cattrs.Converter:
    """The converter that builds and writes back the components ``registry`` names. Kept per set
    of registrations, so the pipelines of one process that see the same plugins (each collects its
    registry once) share one converter, its hooks made once."""
    # Encoder factories are closures made anew with each registry: the plugin that registered them names them.
    named = tuple((r.kind, r.name, r.plugin, r.factory if r.kind in NAMED_BY_KIND else None) for r in registry)
    key = (named, omit_defaults)
    if key not in _converters:
        if len(_converters) >= 8:
            _converters.clear()  # plugins registered at run time, in tests: no need to keep the old ones
        _converters[key] = _make_converter(registry, omit_defaults)
    return _converters[key]


def _make_converter(registry: Registry, omit_defaults: bool) -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    for tp, hook in _LEAVES.items():
        converter.register_structure_hook(tp, hook)
    converter.register_structure_hook_func(_of(typing.Literal), _strict(lambda v, tp: v in typing.get_args(tp)))
    converter.register_structure_hook_func(_of(dict, Mapping), _strict(lambda v, _: isinstance(v, Mapping), dict))
    converter.register_structure_hook_factory(_of(list, tuple), _sequence_hook)
    converter.register_structure_hook_factory(_is_choice, _choice_hook)
    converter.register_structure_hook_factory(attrs.has, lambda cls, c: _class_hook(cls, c, registry))
    converter.register_structure_hook_factory(
        lambda tp: tp in _COMPONENT_KINDS, lambda tp, c: _component_hook(tp, c, registry)
    )
    # Written back by what a value is, not by how its field is typed (a ``Masker`` is a TokenMasker).
    by_value = override(unstruct_hook=converter.unstructure)

    def unstructure_class(cls: type) -> Any:
        fields = {f.name: by_value for f in attrs.fields(cls)}
        base = make_dict_unstructure_fn(
            cls, converter, _cattrs_omit_if_default=omit_defaults, _cattrs_use_alias=True, **fields
        )
        kind = registered_name(cls, registry)
        return base if kind is None else lambda obj: {"kind": kind, **base(obj)}

    converter.register_unstructure_hook_factory(attrs.has, unstructure_class)
    converter.register_unstructure_hook(Path, str)
    converter.register_unstructure_hook_func(
        lambda cls: isinstance(cls, type) and issubclass(cls, (list, tuple)),
        lambda obj: [converter.unstructure(item) for item in obj],
    )
    converter.register_unstructure_hook_func(
        lambda cls: isinstance(cls, type) and issubclass(cls, Mapping),
        lambda obj: {str(k): converter.unstructure(v) for k, v in obj.items()},
    )
    return converter


# -- problems, one line each --------------------------------------------------------------------


def problem_lines(exc: BaseException, path: str = "", tp: Any = None) -> Iterator[tuple[str, str]]:
    """``(key path, message)`` for every error cattrs grouped in ``exc``. An error that is not a
    problem with the config (a bug) is raised as it is."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for inner in without:  # unknown keys first, then the keys in the order the class declares them
            yield from problem_lines(inner, path, exc.cl)
        for inner, note in with_notes:
            inner_path = f"{path}[{note.index}]" if isinstance(note, IterableValidationNote) else _join(path, note.name)
            yield from problem_lines(inner, inner_path, note.type)
    elif isinstance(exc, ForbiddenExtraKeysError):
        allowed = [f.alias for f in attrs.fields(exc.cl) if f.init]
        for key in sorted(exc.extra_fields, key=str):
            close = _suggest(str(key), allowed)
            hint = f"did you mean {close!r}? " if close else ""
            yield _join(path, key), f"unknown key; {hint}allowed: {', '.join(allowed)}"
    elif isinstance(exc, Rejected):
        yield path, f"got {exc.value!r}; expected {exc.expected or describe_type(tp)}"
    elif isinstance(exc, Problem):
        yield path, str(exc)
    elif isinstance(exc, KeyError):
        yield path, f"missing; expected {describe_type(tp)}"
    elif isinstance(exc, (ValueError, TypeError, SecCybertError)):
        yield path, validator_message(exc)  # __init__ or __attrs_post_init__: the class as a whole
    else:
        raise exc


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


def validator_message(exc: BaseException) -> str:
    """attrs' validator messages are long tuples of internals; keep the readable part."""
    message = str(exc.args[0]) if exc.args else str(exc)
    if message.startswith("'") and " must be " in message:
        message = message.split(" ", 1)[1]
    return message


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# -- the loader's entry points -----------------------------------------------------------------


@attrs.define
class Problems:
    """Collects problems while a config is built."""

    lines: list[str] = attrs.field(factory=list)

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path or '<top level>'}: {message}")


def _structure(data: Any, tp: Any, path: str, registry: Registry, problems: Problems) -> Any:
    try:
        return converter_for(registry).structure(data, tp)
    except (ClassValidationError, IterableValidationError, Rejected, Problem) as exc:
        for key_path, message in problem_lines(exc, path, tp):
            problems.add(key_path, message)
        return attrs.NOTHING


def build(cls: type, data: Any, path: str, registry: Registry, problems: Problems) -> Any:
    """Build attrs class ``cls`` from ``data``, recording every problem (``attrs.NOTHING`` if any)."""
    return _structure(data, cls, path, registry, problems)


def build_value(tp: Any, value: Any, path: str, registry: Registry, problems: Problems) -> Any:
    """``value`` as type ``tp`` (a class, a component Protocol, a leaf), recording every problem."""
    return _structure(value, tp, path, registry, problems)


def build_component(kind: str, data: Any, path: str, registry: Registry, problems: Problems) -> Any:
    """Build a registered component from ``{kind: NAME, ...params}``."""
    return _structure(data, _PROTOCOL_OF[kind], path, registry, problems)


def check(problems: Problems, source: str | None = None) -> None:
    if problems.lines:
        raise ConfigError(problems.lines, source=source)


def unstructure(obj: Any, registry: Registry | None = None, *, omit_defaults: bool = False) -> Any:
    """The inverse of :func:`build`: plain data that ``build`` accepts again.

    Registered components get their ``kind`` back, so a stage's resolved config in
    ``lineage.json`` can be pasted into a YAML file. ``omit_defaults`` leaves out settings equal
    to their default (what a run's fingerprint hashes). ``registry`` names the components; the
    process-wide one by default.
    """
    if registry is None:
        from sec_cybert.plugins.registry import get_registry

        registry = get_registry()
    return converter_for(registry, omit_defaults=omit_defaults).unstructure(obj)


# -- which registration made a component ------------------------------------------------------------


def registration_of(cls: type, registry: Registry) -> Any:
    """The registration whose factory is ``cls``, or ``None`` (a class used from Python only)."""
    for registration in registry:
        if registration.factory is cls and registration.kind in NAMED_BY_KIND:
            return registration
    return None


def registered_name(cls: type, registry: Registry) -> str | None:
    registration = registration_of(cls, registry)
    return registration.name if registration is not None else None


def registrations_used(obj: Any, registry: Registry) -> list[Any]:
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
