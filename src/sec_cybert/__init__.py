"""sec_cybert: domain- and task-adaptive pretraining of encoders, and the fine-tuning that follows.

    from sec_cybert import Pipeline, stages, corpus

Heavy dependencies (torch, transformers) load when a stage runs, not at import.
"""

from importlib import metadata as _metadata

from sec_cybert.errors import (
    ConfigError,
    DataError,
    HardwareError,
    PluginError,
    SecCybertError,
    UnknownComponentError,
)
from sec_cybert.hookspecs import hookimpl
from sec_cybert.pipeline import Pipeline, PipelineResult, load_run_config
from sec_cybert.plugins import get_plugin_manager, get_registry

try:
    __version__ = _metadata.version("sec-cybert")
except _metadata.PackageNotFoundError:  # a source tree on sys.path without installation
    __version__ = "0+unknown"

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
