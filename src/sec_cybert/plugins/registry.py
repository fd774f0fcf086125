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

from sec_cybert.errors import PluginError, UnknownComponentError
from sec_cybert.plugins import hookspecs

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


def _labelled(name: str, distribution: str | None, version: str | None) -> str:
    """``'acme' (acme-plugins 1.2)``: a plugin as errors name it, with the package to fix or remove."""
    return f"{name!r} ({distribution} {version})" if distribution else repr(name)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def load_entry_point_plugins(pm: pluggy.PluginManager, allowed: Iterable[str] | None = None) -> None:
    """Register every plugin of the entry-point group (built-ins always; others if ``allowed``).

    Each is loaded by pluggy (``load_setuptools_entrypoints``), which keeps the distribution it
    came from (``pm.list_plugin_distinfo()``, read by :func:`plugin_distributions`). A plugin
    that fails to import, or whose hook implementations do not fit the hook specifications,
    raises :class:`PluginError` naming it and its distribution and version, instead of a bare
    traceback from deep inside importlib or pluggy.
    """
    allowed_set = None if allowed is None else set(allowed)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        builtin = _is_builtin(entry_point)
        if not builtin and allowed_set is not None and entry_point.name not in allowed_set:
            continue
        if pm.get_plugin(entry_point.name) is not None:
            continue
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=entry_point.name)
        except Exception as exc:  # any failure of foreign code becomes one clear error
            dist = entry_point.dist
            label = _labelled(entry_point.name, dist.metadata["Name"], dist.version) if dist else repr(entry_point.name)
            failed = (
                "does not fit sec_cybert's hooks"
                if isinstance(exc, pluggy.PluginValidationError)
                else "failed to load"
            )
            raise PluginError(
                f"plugin {label} {failed} ({_one_line(exc)}). Fix, upgrade or uninstall it, or exclude it "
                f"with {PLUGINS_ENV_VAR}=<names to keep>."
            ) from exc
    if not any(name.startswith("builtin-") for name, _ in pm.list_name_plugin()):
        raise PluginError(
            "the built-in plugins were not found: sec_cybert is not installed as a distribution. "
            "Install it (pip install -e . in a checkout) so its entry points exist."
        )


def check_pending(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()`` (every hook implementation names a hook we have), its error naming
    the plugin and its distribution."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        dist = plugin_distributions(pm).get(name, {})
        raise PluginError(
            f"plugin {_labelled(name, dist.get('distribution'), dist.get('version'))} implements a hook "
            f"sec_cybert does not have ({_one_line(exc)}); hooks.md lists them. Fix, upgrade or uninstall "
            f"it, or exclude it with {PLUGINS_ENV_VAR}=<names to keep>."
        ) from exc


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
        check_pending(pm)
        _default_manager = pm
    return _default_manager


def plugin_distributions(pm: pluggy.PluginManager) -> dict[str, dict[str, str | None]]:
    """For each plugin registered on ``pm``: the distribution (pip package) that provides it and
    its version, as pluggy recorded them when it loaded the plugin's entry point. A plugin
    registered from code has neither, even under an entry point's name."""
    loaded = {}
    for plugin, dist in pm.list_plugin_distinfo():
        name = pm.get_name(plugin)
        if name is not None:  # None: unregistered since
            loaded[name] = {"distribution": dist.project_name, "version": dist.version}
    return {
        name: loaded.get(name, {"distribution": None, "version": None})
        for name, _ in pm.list_name_plugin()
        if name is not None
    }


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests, or after installing a plugin at run time)."""
    global _default_manager
    _default_manager = None


@attrs.frozen
class Registration:
    """One registered component: what it is called, what builds it, which plugin said so, and
    the distribution (pip package) and version that plugin came from (``None`` for a plugin
    registered from code)."""

    kind: str
    name: str
    factory: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None

    @property
    def provider(self) -> str:
        """``plugin 'acme' (acme-plugins 1.2)``: who to blame, in messages."""
        return f"plugin {_labelled(self.plugin, self.distribution, self.version)}"


@attrs.frozen
class Registry:
    """All components of all kinds, as registered through the hooks of one plugin manager."""

    entries: dict[str, dict[str, Registration]]

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KIND_HOOKS}
        distributions = plugin_distributions(pm)
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            # Calling each implementation with its own `register` tells us who registered what.
            for impl in hook.get_hookimpls():
                dist = distributions.get(impl.plugin_name, {})
                source = _Source(impl.plugin_name, dist.get("distribution"), dist.get("version"))
                register = _registrar(entries[kind], kind, source)
                try:
                    impl.function(**dict.fromkeys(impl.argnames, register))
                except PluginError:
                    raise
                except Exception as exc:  # foreign code: one error naming whose it is
                    raise PluginError(
                        f"plugin {source.label} failed in {hook_name} ({_one_line(exc)}). Fix, upgrade "
                        f"or uninstall it, or exclude it with {PLUGINS_ENV_VAR}=<names to keep>."
                    ) from exc
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

    def of_class(self, cls: type) -> Registration | None:
        """The registration whose factory is ``cls``, or ``None`` (a class used from Python only)."""
        return next((registration for registration in self if registration.factory is cls), None)

    def registrations_in(self, component: Any) -> list[Registration]:
        """The registrations of ``component`` and of the components nested in its attrs fields
        (a stage's corpus, chunker, masker ...), each once."""
        by_factory = {id(registration.factory): registration for registration in reversed(list(self))}
        found: list[Registration] = []

        def walk(value: Any) -> None:
            if isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
                return
            registration = by_factory.get(id(type(value)))
            if registration is not None and registration not in found:
                found.append(registration)
            if attrs.has(type(value)):
                for field in attrs.fields(type(value)):
                    walk(getattr(value, field.name))

        walk(component)
        return found

    def __iter__(self):
        for kind in KIND_HOOKS:
            yield from (self.entries[kind][name] for name in sorted(self.entries[kind]))


def third_party_versions(component: Any, registry: Registry) -> dict[str, str]:
    """``{distribution: version}`` of the third-party packages whose plugins registered
    ``component`` or a component nested in it: what a fingerprint or a cache key needs beside
    sec_cybert's own version, since upgrading such a package can change what the component
    computes. Empty for built-ins, and for plugins registered from code (they have no version)."""
    return {
        registration.distribution: registration.version
        for registration in sorted(registry.registrations_in(component), key=lambda r: r.distribution or "")
        if registration.distribution not in (None, BUILTIN_DISTRIBUTION) and registration.version is not None
    }


def describe_component(
    component: Any, pm: pluggy.PluginManager | None = None, *, registry: Registry | None = None
) -> str:
    """``AcmeStage, stage 'acme' of plugin 'acme' (acme-plugins 1.2)``: a component as an error
    about it names it, with whose it is; the class name alone when no plugin registered it.
    ``registry``: the one already collected (a pipeline's), else ``pm``'s is collected."""
    name = type(component).__name__
    try:
        registration = (registry if registry is not None else get_registry(pm)).of_class(type(component))
    except PluginError:
        return name  # the plugins cannot be read now; the class name still helps
    if registration is None:
        return name
    return f"{name}, {registration.kind} {registration.name!r} of {registration.provider}"


@attrs.frozen
class _Source:
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def label(self) -> str:
        return _labelled(self.plugin, self.distribution, self.version)


def _registrar(table: dict[str, Registration], kind: str, source: _Source) -> Callable[[str, Any], None]:
    def register(name: str, factory: Any) -> None:
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise PluginError(
                f"plugin {source.label} registered the {kind} name {name!r}; names are lower-case letters, "
                "digits, '-', '_' and '.', starting with a letter or digit"
            )
        if not callable(factory):
            raise PluginError(
                f"plugin {source.label} registered {kind} {name!r} as {factory!r}, which is not callable: "
                "register a class or a factory function, not an instance"
            )
        if name in table and table[name].factory is not factory:
            first = table[name]
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {_labelled(first.plugin, first.distribution, first.version)} "
                f"and by {source.label}. Uninstall one, or exclude it with {PLUGINS_ENV_VAR}."
            )
        table[name] = Registration(
            kind=kind,
            name=name,
            factory=factory,
            plugin=source.plugin,
            distribution=source.distribution,
            version=source.version,
        )

    return register


def get_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    """The components registered on ``pm`` (the process-wide manager by default).

    Collected afresh on each call: it is a handful of function calls, and a plugin registered
    at run time is seen at once.
    """
    return Registry.collect(pm or get_plugin_manager())
