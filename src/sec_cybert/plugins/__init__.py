"""The plugin API: the hook specifications and the registry the plugin manager fills.

Just above the ground floor, so every floor can look a component up by its registered name.
``from sec_cybert.plugins import get_plugin_manager`` (the path docs/plugins.md shows) works as
before: the registry's public names are re-exported here.
"""

from sec_cybert.plugins.registry import (
    BUILTIN_DISTRIBUTION,
    ENTRY_POINT_GROUP,
    PLUGINS_ENV_VAR,
    Registration,
    Registry,
    allowed_from_env,
    check_pending,
    describe_component,
    get_plugin_manager,
    get_registry,
    load_entry_point_plugins,
    new_plugin_manager,
    plugin_distributions,
    reset_plugin_manager,
    third_party_versions,
)

__all__ = [
    "BUILTIN_DISTRIBUTION",
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV_VAR",
    "Registration",
    "Registry",
    "allowed_from_env",
    "check_pending",
    "describe_component",
    "get_plugin_manager",
    "get_registry",
    "load_entry_point_plugins",
    "new_plugin_manager",
    "plugin_distributions",
    "reset_plugin_manager",
    "third_party_versions",
]
