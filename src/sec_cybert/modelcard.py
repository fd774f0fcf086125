"""Model cards and the hub push, under the names they always had.

The cards live in :mod:`sec_cybert.sharing.modelcard`, the push in :mod:`sec_cybert.sharing.hub`.
"""

from sec_cybert.sharing.hub import PUSH_IGNORE, HubError, push_to_hub
from sec_cybert.sharing.modelcard import (
    CARD_FILE,
    read_card_record,
    read_front_matter,
    render_model_card,
    stage_chain,
    write_model_card,
)

__all__ = [
    "CARD_FILE",
    "PUSH_IGNORE",
    "HubError",
    "push_to_hub",
    "read_card_record",
    "read_front_matter",
    "render_model_card",
    "stage_chain",
    "write_model_card",
]
