"""sec_cybert: domain- and task-adaptive pretraining of encoders, and the fine-tuning that follows.

    from sec_cybert import Pipeline, stages, corpus

Heavy dependencies (torch, transformers) load when a stage runs, not at import.
"""

from sec_cybert import _moved
from sec_cybert.core.version import __version__
from sec_cybert.errors import (
    ConfigError,
    DataError,
    HardwareError,
    PluginError,
    SecCybertError,
    UnknownComponentError,
)
from sec_cybert.host.pipeline import Pipeline, PipelineResult, load_run_config
from sec_cybert.plugins.hookspecs import hookimpl
from sec_cybert.plugins.registry import get_plugin_manager, get_registry

_moved.install()

__all__ = [
    "ConfigError",
    "DataError",
    "HardwareError",
    "Pipeline",
    "PipelineResult",
    "PluginError",
    "SecCybertError",
    "UnknownComponentError",
    "__version__",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "load_run_config",
]
