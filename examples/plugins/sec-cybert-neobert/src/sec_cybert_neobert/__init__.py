"""NeoBERT for sec_cybert: an example plugin that adds an encoder transformers does not ship.

Importing this package registers the ``neobert`` model type with transformers' Auto classes
(``AutoConfig``, ``AutoModel``, ``AutoModelForMaskedLM``), so checkpoints it writes load with
``AutoModel.from_pretrained(dir)`` like any other. The sec_cybert hooks live in
:mod:`sec_cybert_neobert.plugin` (entry point ``neobert`` in the ``sec_cybert`` group).
"""

from __future__ import annotations

import logging

from sec_cybert_neobert.configuration_neobert import NeoBERTConfig
from sec_cybert_neobert.modeling_neobert import (
    NeoBERTForMaskedLM,
    NeoBERTModel,
    NeoBERTPreTrainedModel,
)

__all__ = [
    "NeoBERTConfig",
    "NeoBERTForMaskedLM",
    "NeoBERTModel",
    "NeoBERTPreTrainedModel",
    "register_auto_classes",
]
__version__ = "0.1.0"

log = logging.getLogger(__name__)


def register_auto_classes() -> bool:
    """Register ``neobert`` with AutoConfig, AutoModel and AutoModelForMaskedLM; safe to call again.

    Returns False, and registers nothing, when another config class already owns the ``neobert``
    model type (a future transformers release that ships NeoBERT itself, or a second plugin):
    overriding it silently would load that library's checkpoints into our classes.
    """
    from transformers import CONFIG_MAPPING, AutoConfig, AutoModel, AutoModelForMaskedLM

    if NeoBERTConfig.model_type in CONFIG_MAPPING:
        owner = CONFIG_MAPPING[NeoBERTConfig.model_type]
        if owner is not NeoBERTConfig:
            log.warning(
                "model type %r is already registered by %s.%s; sec_cybert_neobert leaves it alone",
                NeoBERTConfig.model_type,
                owner.__module__,
                owner.__qualname__,
            )
            return False
    else:
        AutoConfig.register(NeoBERTConfig.model_type, NeoBERTConfig)
    # Re-registering our own classes is a no-op (exist_ok), never an error.
    AutoModel.register(NeoBERTConfig, NeoBERTModel, exist_ok=True)
    AutoModelForMaskedLM.register(NeoBERTConfig, NeoBERTForMaskedLM, exist_ok=True)
    return True


register_auto_classes()
