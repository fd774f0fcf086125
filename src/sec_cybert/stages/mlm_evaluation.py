"""A checkpoint's masked-language-model loss on a premasked set: the ablation's MLM column.

Every variant (base, +DAPT, +DAPT+TAPT) is scored on each variant-producing stage's kept
validation set with the same masked targets, so the column compares like with like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sec_cybert.stages.training import Training

if TYPE_CHECKING:
    from sec_cybert.core.components import HardwareProfile


def masked_lm_loss(checkpoint: str, dataset: Any, *, profile: HardwareProfile, batch_size: int = 16) -> float:
    """Mean cross-entropy (nats) of ``checkpoint`` over every target of a premasked ``dataset``.

    Weighted by targets, not by batch as the Trainer's ``eval_loss`` is, so two models scored on
    the same set compare exactly. The ablation scores each variant on each variant-producing
    stage's kept validation set with this.
    """
    import torch
    from accelerate.utils import send_to_device
    from transformers import AutoModelForMaskedLM

    from sec_cybert.datapath.collator import MaskingCollator
    from sec_cybert.datapath.document_attention import DocumentAttention
    from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker
    from sec_cybert.stages.loading import load_pretrained, load_tokenizer

    runtime = Training().runtime(profile)
    tokenizer = load_tokenizer(checkpoint)
    model = load_pretrained(
        AutoModelForMaskedLM, checkpoint, attn_implementation=runtime.attn_implementation, dtype=torch.float32
    )
    device = torch.device("cuda" if runtime.device == "cuda" else "cpu")
    model.to(device).eval()
    packed = "position_ids" in dataset.column_names  # a packed set is scored with its boundaries
    attention = DocumentAttention.from_config(model.config) if packed else None
    # Premasked rows: the collator only pads them (and keeps their documents apart).
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), attention=attention)
    total = count = 0.0
    columns = dataset.select_columns(["input_ids", "labels", *(["position_ids"] if packed else [])])
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=runtime.bf16):
        for start in range(0, len(columns), batch_size):
            rows = columns.select(range(start, min(start + batch_size, len(columns))))
            batch = send_to_device(collate(list(rows)), device)  # nested: a packed batch's masks
            targets = int((batch["labels"] != IGNORE_INDEX).sum())
            if targets:
                total += float(model(**batch).loss) * targets
                count += targets
    return total / count if count else float("nan")
