"""A masker's output checked against the model before training, and a masker named as a user
would look for it (its registered name and the plugin that registered it).

A plugin masker whose labels reach past the vocabulary, or whose mask id lies outside it, makes
the model's embedding or its loss index out of range: an ``IndexError`` deep in torch on a CPU,
a device-side assert that kills the process on CUDA. One batch, collated as the Trainer will
collate it, shows either before anything trains.
"""

from __future__ import annotations

import copy
from typing import Any

from sec_cybert.core.context import StageContext
from sec_cybert.datapath.masking import IGNORE_INDEX
from sec_cybert.errors import PluginError
from sec_cybert.plugins.registry import Registry, get_registry


def run_registry(context: StageContext) -> Registry | None:
    """The registry the run collected (``context.registry``), or one collected from the context's
    plugin manager for a context built outside a pipeline; ``None`` when it has neither."""
    if context.registry is not None:
        return context.registry
    return get_registry(context.plugin_manager) if context.plugin_manager is not None else None


def describe_masker(masker: Any, registry: Registry | None = None) -> str:
    """``the masker 'span' (plugin 'acme')``, or its class and module when it is not registered."""
    name = type(masker).__name__
    for registration in registry or ():
        if registration.kind == "masker" and registration.factory is type(masker):
            return f"the masker {registration.name!r} ({name}, plugin {registration.plugin!r})"
    return f"the masker {name} (from {type(masker).__module__})"


def vocabulary_size(model: Any) -> int | None:
    """How many token ids the model embeds (may exceed the tokenizer's: padded vocabularies)."""
    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    size = getattr(embeddings, "num_embeddings", None)
    return int(size) if size is not None else None


def check_first_batch(collator: Any, dataset: Any, model: Any, *, batch_size: int, masker: str) -> None:
    """Collate the dataset's first ``batch_size`` rows and refuse ids the model cannot embed and
    labels its loss cannot index, naming ``masker`` (:func:`describe_masker`)."""
    vocab = vocabulary_size(model)
    if vocab is None or len(dataset) == 0:
        return
    rows = [dataset[i] for i in range(min(batch_size, len(dataset)))]
    # A copy: the collator remembers the rows it collated last (the numerical guard names them).
    batch = copy.copy(collator)(rows)
    ids, labels = batch.get("input_ids"), batch.get("labels")
    fix = "fix the masker or the plugin that provides it"
    if ids is not None and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        bad = int(ids.max()) if int(ids.max()) >= vocab else int(ids.min())
        raise PluginError(
            f"{masker} put token id {bad} into the batch, outside the model's vocabulary of {vocab} ids "
            f"(0..{vocab - 1}); a mask id or random replacement must be one of them: {fix}"
        )
    if labels is None:
        return
    targets = labels[labels != IGNORE_INDEX]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocab):
        bad = int(targets.max()) if int(targets.max()) >= vocab else int(targets.min())
        raise PluginError(
            f"{masker} gave label {bad}, outside the model's vocabulary of {vocab} ids (0..{vocab - 1}); "
            f"a label is the original token id, or {IGNORE_INDEX} where no loss is taken: {fix}"
        )
