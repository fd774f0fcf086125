"""What each pretraining stage's contamination-check cache entry is keyed by
(:mod:`sec_cybert.corpus.contamination_cache`): the stage's settings as the config loader writes
them, its data files by content, and the plugins that provided it. The host's to compute: it
reads the registry and the config loader, which sit above the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from sec_cybert.core.files import file_digest, files_under
from sec_cybert.host.config import unstructure
from sec_cybert.plugins.registry import third_party_versions

if TYPE_CHECKING:
    from sec_cybert.core.components import Stage
    from sec_cybert.plugins.registry import Registry

log = structlog.get_logger(__name__)


def stage_identities(stages: Iterable[Stage], registry: Registry) -> dict[str, dict[str, Any] | None]:
    """What each pretraining stage's entry is keyed by (see the module docstring); ``None`` for a
    stage that names no data files. The files are digested by content, once per process."""
    identities: dict[str, dict[str, Any] | None] = {}
    for stage in stages:
        files = files_under(getattr(stage, "data_files", tuple)())
        if not files:
            log.info("contamination check not cached: the stage names no data files", stage=stage.name)
            identities[stage.name] = None
            continue
        settings = unstructure(stage, registry)
        corpus = settings.get("corpus", settings) if isinstance(settings, Mapping) else settings
        identity: dict[str, Any] = {
            "stage": stage.name,
            "class": f"{type(stage).__module__}.{type(stage).__qualname__}",
            "corpus": corpus,
            # In order: the exclusions found name documents by their position in the corpus.
            "files": [[path.name, file_digest(path)] for path in files],
        }
        plugins = third_party_versions(stage, registry)
        if plugins:
            identity["plugins"] = plugins
        identities[stage.name] = identity
    return identities

