"""Loading a checkpoint for a stage, with the attention fallback the hardware layer promises."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from sec_cybert.errors import DataError, SecCybertError

log = structlog.get_logger(__name__)

_FALLBACK = {"flash_attention_2": "sdpa", "sdpa": "eager"}


class _LoadReportFilter(logging.Filter):
    """Keeps transformers' multi-line LOAD REPORT out of the log; we log one line of our own instead."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" in message:
            self.reports.append(message)
            return False
        return True


@contextlib.contextmanager
def _own_load_report(reference: str) -> Iterator[dict[str, Any]]:
    """Replace the report with one line: which weights the checkpoint lacked and which went unused.

    Loading an encoder from an MLM checkpoint always leaves the MLM head unused; that is expected
    and logged at info level. Weights the model needs but the checkpoint lacks start random: warned,
    the head's apart (a checkpoint of the bare encoder, e.g. a sentence-embedding model, has none);
    the caller puts the loaded model in the yielded dict to tell them apart.
    """
    logger = logging.getLogger("transformers.modeling_utils")
    report_filter = _LoadReportFilter()
    logger.addFilter(report_filter)
    loaded: dict[str, Any] = {}
    try:
        yield loaded
    finally:
        logger.removeFilter(report_filter)
    for report in report_filter.reports:
        missing = sorted(set(re.findall(r"^(\S+)\s*\|\s*MISSING", report, re.MULTILINE)))
        unused = sorted(set(re.findall(r"^(\S+)\s*\|\s*UNEXPECTED", report, re.MULTILINE)))
        head = _head_keys(loaded.get("model"), missing)
        if head:
            log.warning(
                "the checkpoint has no weights for the model's head (e.g. an MLM head transform): "
                "it starts random and training learns it",
                checkpoint=reference,
                keys=head,
            )
        if set(missing) - set(head):
            log.warning(
                "weights missing from the checkpoint start random",
                checkpoint=reference,
                keys=[key for key in missing if key not in head],
            )
        if unused:
            log.info(
                "checkpoint weights this model does not use (e.g. an MLM head)",
                checkpoint=reference,
                keys=unused,
            )
        if not missing and not unused:
            log.warning("transformers load report", checkpoint=reference, report=report)


def _head_keys(model: Any, keys: list[str]) -> list[str]:
    """The ``keys`` outside the encoder of a model with a head on it (``BertForMaskedLM.bert``,
    ``ModernBertForMaskedLM.model``): its head's."""
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or not hasattr(model, prefix):
        return []
    return [key for key in keys if not key.startswith(f"{prefix}.")]


#: The tokenizer's own files in a checkpoint directory, in the order a broken one is looked for.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def load_tokenizer(reference: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(reference)
    except OSError as exc:
        raise _not_found(reference, exc) from exc
    except Exception as exc:  # noqa: BLE001 - JSONDecodeError, UnicodeDecodeError, the tokenizers library's own
        directory = Path(reference)
        if not directory.is_dir():
            raise
        raise DataError(_unreadable_tokenizer(directory, exc)) from None


def _unreadable_tokenizer(directory: Path, exc: BaseException) -> str:
    """One line naming the tokenizer file that does not load (a JSON one that does not parse, else
    ``tokenizer.json``), for a directory whose tokenizer raised ``exc``."""
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    present = [directory / name for name in _TOKENIZER_FILES if (directory / name).is_file()]
    broken = next((path for path in present if not _parses(path)), present[0] if present else directory)
    return (
        f"{broken} is not a readable tokenizer file ({reason}); it was cut short or edited: copy it "
        "again from the checkpoint or hub model it came from"
    )


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return False
    return True


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
    Weights with a NaN or inf are refused: training on them gives NaN everywhere.
    """
    attempt = attn_implementation
    while True:
        try:
            with _own_load_report(reference) as loaded:
                model = loaded["model"] = auto_class.from_pretrained(
                    reference, attn_implementation=attempt, dtype=dtype
                )
            if hasattr(model, "named_parameters"):
                from sec_cybert.stages.guards import require_finite

                require_finite(model, f"the checkpoint {reference} (init_from)")
            return model
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
