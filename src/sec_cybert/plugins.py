"""The plugin manager and the component registry it fills.

Plugins come from the entry-point group ``sec_cybert``; the built-ins are entry points of this
distribution, so they go through exactly the path a third-party plugin does. Loading is lazy
(the first :func:`get_plugin_manager` call) and injectable (``Pipeline(plugin_manager=...)``).

``SEC_CYBERT_PLUGINS`` restricts which *third-party* entry points load: a comma-separated list
of entry-point names, or empty to load none. Built-ins always load.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy
import structlog

from sec_cybert import hookspecs
from sec_cybert.errors import PluginError, UnknownComponentError

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "sec_cybert"
BUILTIN_DISTRIBUTION = "sec-cybert"
PLUGINS_ENV_VAR = "SEC_CYBERT_PLUGINS"

#: Component kinds, the hook that registers each, and the word used in messages.
KIND_HOOKS: dict[str, str] = {
    "corpus": "register_corpus_sources",
    "chunker": "register_chunkers",
    "masker": "register_maskers",
    "hardware": "register_hardware_profiles",
    "stage": "register_stages",
    "encoder": "register_encoders",
    "tracker": "register_trackers",
}

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")

_default_manager: pluggy.PluginManager | None = None


def new_plugin_manager() -> pluggy.PluginManager:
    """An empty manager that knows our hook specifications; register plugins on it yourself."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _is_builtin(entry_point: importlib.metadata.EntryPoint) -> bool:
    dist = getattr(entry_point, "dist", None)
    return dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION


def load_entry_point_plugins(pm: pluggy.PluginManager, allowed: Iterable[str] | None = None) -> None:
    """Register every plugin of the entry-point group (built-ins always; others if ``allowed``).

    A plugin that fails to import raises :class:`PluginError` naming it and its distribution,
    instead of a bare traceback from deep inside importlib.
    """
    allowed_set = None if allowed is None else set(allowed)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        builtin = _is_builtin(entry_point)
        if not builtin and allowed_set is not None and entry_point.name not in allowed_set:
            continue
        if pm.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:  # any import failure of foreign code becomes one clear error
            dist = entry_point.dist.metadata["Name"] if entry_point.dist else "an unknown package"
            raise PluginError(
                f"plugin {entry_point.name!r} from {dist} failed to load ({type(exc).__name__}: {exc}). "
                f"Fix or uninstall it, or exclude it with {PLUGINS_ENV_VAR}=<names to keep>."
            ) from exc
        pm.register(plugin, name=entry_point.name)
    if not any(name.startswith("builtin-") for name, _ in pm.list_name_plugin()):
        raise PluginError(
            "the built-in plugins were not found: sec_cybert is not installed as a distribution. "
            "Install it (pip install -e . in a checkout) so its entry points exist."
        )


def allowed_from_env() -> list[str] | None:
    value = os.environ.get(PLUGINS_ENV_VAR)
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _default_manager
    if _default_manager is None:
        pm = new_plugin_manager()
        load_entry_point_plugins(pm, allowed_from_env())
        pm.check_pending()
        _default_manager = pm
    return _default_manager


def plugin_distributions(pm: pluggy.PluginManager) -> dict[str, dict[str, str | None]]:
    """For each plugin registered on ``pm``: the distribution (pip package) that provides it and
    its version. A plugin registered from code rather than an entry point has neither."""
    by_entry_point = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        if dist is not None:
            by_entry_point[entry_point.name] = {"distribution": dist.metadata["Name"], "version": dist.version}
    return {
        name: by_entry_point.get(name, {"distribution": None, "version": None})
        for name, _ in pm.list_name_plugin()
        if name is not None
    }


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or after installing a plugin at run time)."""
    global _default_manager
    _default_manager = None


@attrs.frozen
class Registration:
    """One registered component: what it is called, what builds it, and which plugin said so."""

    kind: str
    name: str
    factory: Any
    plugin: str


@attrs.frozen
class Registry:
    """All components of all kinds, as registered through the hooks of one plugin manager."""

    entries: dict[str, dict[str, Registration]]

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KIND_HOOKS}
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            # Calling each implementation with its own `register` tells us who registered what.
            for impl in hook.get_hookimpls():
                impl.function(register=_registrar(entries[kind], kind, impl.plugin_name))
        return cls(entries)

    def get(self, kind: str, name: str) -> Registration:
        try:
            return self.entries[kind][name]
        except KeyError:
            raise UnknownComponentError(kind, name, self.entries.get(kind, {})) from None

    def factory(self, kind: str, name: str) -> Any:
        return self.get(kind, name).factory

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def __iter__(self):
        for kind in KIND_HOOKS:
            yield from (self.entries[kind][name] for name in sorted(self.entries[kind]))


def _registrar(table: dict[str, Registration], kind: str, plugin: str) -> Callable[[str, Any], None]:
    def register(name: str, factory: Any) -> None:
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise PluginError(
                f"plugin {plugin!r} registered the {kind} name {name!r}; names are lower-case letters, "
                "digits, '-', '_' and '.', starting with a letter or digit"
            )
        if not callable(factory):
            raise PluginError(
                f"plugin {plugin!r} registered {kind} {name!r} as {factory!r}, which is not callable: "
                "register a class or a factory function, not an instance"
            )
        if name in table and table[name].factory is not factory:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {table[name].plugin!r} and by {plugin!r}. "
                f"Uninstall one, or exclude it with {PLUGINS_ENV_VAR}."
            )
        table[name] = Registration(kind=kind, name=name, factory=factory, plugin=plugin)

    return register


def get_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    """The components registered on ``pm`` (the process-wide manager by default).

    Collected afresh on each call: it is a handful of function calls, and a plugin registered
    at run time is seen at once.
    """
    return Registry.collect(pm or get_plugin_manager())
