"""Built-in encoders: the offline tiny ModernBERT and hub aliases."""

from __future__ import annotations

from sec_cybert.core.encoders import HUB_ALIASES, hub_encoder, tiny_modernbert
from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl
def register_encoders(register):
    register("tiny-modernbert", tiny_modernbert)
    for alias, model_id in HUB_ALIASES.items():
        register(alias, hub_encoder(model_id))
