"""Loading a checkpoint for a stage, with the attention fallback the hardware layer promises."""

from __future__ import annotations

from typing import Any

import structlog

from sec_cybert.errors import SecCybertError

log = structlog.get_logger(__name__)

_FALLBACK = {"flash_attention_2": "sdpa", "sdpa": "eager"}


def load_tokenizer(reference: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(reference)
    except OSError as exc:
        raise _not_found(reference, exc) from exc


def _not_found(reference: str, exc: BaseException) -> SecCybertError:
    # transformers raises OSError for a checkpoint it cannot find or download; its message spans lines.
    reason = " ".join(str(exc).split()).rstrip(".")
    plugin = (
        "; a bare name may also be an encoder from a plugin that is not installed or is excluded by SEC_CYBERT_PLUGINS"
        if "/" not in reference
        else ""
    )
    return SecCybertError(
        f"could not load {reference!r}: {reason}. Offline? Download the model first (HF_HUB_OFFLINE=1 "
        f"then uses the cache), or point encoder at a local checkpoint directory{plugin}"
    )


def load_pretrained(auto_class: Any, reference: str, *, attn_implementation: str, dtype: Any) -> Any:
    """``auto_class.from_pretrained`` with ``attn_implementation``, stepping down when the model lacks it.

    The runtime picks flash-attention for the GPU; an architecture without a kernel for it (NeoBERT,
    DeBERTa) refuses with a ValueError, and we step down to SDPA, then eager, with one log line.
    """
    attempt = attn_implementation
    while True:
        try:
            return auto_class.from_pretrained(reference, attn_implementation=attempt, dtype=dtype)
        except ValueError as exc:
            fallback = _FALLBACK.get(attempt)
            if fallback is None or "attn" not in str(exc).lower() and "attention" not in str(exc).lower():
                raise
            log.warning(
                "attention implementation unsupported by this model", requested=attempt, using=fallback
            )
            attempt = fallback
        except OSError as exc:
            raise _not_found(reference, exc) from exc
