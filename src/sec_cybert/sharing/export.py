"""Export one head of a fine-tuned directory as a standard transformers sequence classifier.

A fine-tuned directory holds the encoder and several heads (:class:`MultiHeadClassifier`); only
sec_cybert reads the heads. :func:`export_head` writes one head as an
``AutoModelForSequenceClassification`` checkpoint: a fresh Python process loads it with
transformers alone (no ``trust_remote_code``, no ``import sec_cybert``), ``pipeline(
"text-classification")`` and the hub's widget use it, and its logits are the head's logits.

Why the mapping is exact. Our head is ``Linear(dropout(pool(h)))``. ModernBERT's is
``classifier(drop(norm(act(dense(pool(h))))))``, and ``norm`` is a LayerNorm (it divides by
the standard deviation of its input, so no weights make it the identity in general). Two facts
make it an exact affine map anyway:

1. ``h`` leaves the encoder's ``final_norm``, so a pooled vector (the [CLS] row, or a mean of
   rows, weights summing to 1) is ``x = beta + gamma * u`` with ``mean(u) = 0`` and
   ``var(u) < 1``. ``dense = s * diag(1/gamma)`` (bias ``-s * beta/gamma``) gives ``z = s * u``:
   already zero-mean, so the LayerNorm's centering changes nothing.
2. With ``s = sqrt(eps) * 2**-13``, ``var(z) < s**2 = eps * 2**-26``, so ``var(z) + eps`` rounds
   to ``eps`` in float32: the LayerNorm divides by the constant ``sqrt(eps)``, and its weight
   ``2**13`` restores ``u``. ``act`` is ``linear`` (the identity), and ``classifier`` holds
   ``W * gamma`` with bias ``b + W @ beta``, which maps ``u`` back to ``W @ x + b``.

The export keeps the encoder's dtype; load it in float32 or bfloat16 (in float16 ``s``, ~4e-7,
is below float16's normal range). Fine-tuning the export further works, but starts from this
unusual head parameterisation.

Heads: ``softmax`` -> ``single_label_classification`` with the head's labels; ``multilabel`` ->
``multi_label_classification`` with the head's labels; ``coral`` and ``thresholds`` (ordinal,
K levels) -> K-1 threshold logits (``logit_k`` of ``label > k``, ``id2label`` ``">= <label>"``)
with ``multi_label_classification``: the level is the count of sigmoids above 0.5, which
``config.sec_cybert_head`` records with the levels. ``attention`` pooling and encoders other
than ModernBERT are refused: transformers has no head that reproduces them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import structlog

from sec_cybert.core.context import STAGE_RECORD
from sec_cybert.errors import DataError
from sec_cybert.stages.classifier import HEADS_CONFIG, HEADS_WEIGHTS

log = structlog.get_logger(__name__)

#: The LayerNorm weight of the exported prediction head; the dense layer scales by its inverse.
HEAD_NORM_WEIGHT = 2.0**13
SUPPORTED_MODEL_TYPES = ("modernbert",)
SUPPORTED_POOLING = ("cls", "mean")


def export_head(
    finetuned_dir: Path | str, head_name: str, out_dir: Path | str, *, verify: bool = True
) -> Path:
    """Write head ``head_name`` of ``finetuned_dir`` (a fine-tune's output) to ``out_dir`` as an
    ``AutoModelForSequenceClassification`` checkpoint with the tokenizer and a model card.

    ``verify`` runs both models on a few token sequences and refuses (``DataError``) an export
    whose logits differ from the head's. Returns ``out_dir``.
    """
    from transformers import AutoModelForSequenceClassification

    from sec_cybert.stages.classifier import MultiHeadClassifier

    source, out = Path(finetuned_dir), Path(out_dir)
    spec = _read_spec(source)
    names = [h.get("name") for h in spec.get("heads", ())]
    if head_name not in names:
        raise DataError(f"{source} has no head {head_name!r}; its heads: {', '.join(map(str, names))}")
    if spec.get("pooling") not in SUPPORTED_POOLING:
        raise DataError(
            f"{source} pools with {spec.get('pooling')!r}; an export needs cls or mean pooling "
            "(transformers' sequence-classification heads have no attention pooling)"
        )
    if out.resolve() == source.resolve():
        raise DataError(f"export into another directory than {source}: it would replace the fine-tune's config.json")
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"{out} is not empty; export into a new directory, or delete that one")

    classifier = MultiHeadClassifier.load(source)
    head = next(h for h in classifier.head_specs if h.name == head_name)
    encoder = classifier.encoder
    model_type = getattr(encoder.config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise DataError(
            f"{source} holds a {model_type} encoder; export_head supports {', '.join(SUPPORTED_MODEL_TYPES)} "
            "(its sequence-classification head can reproduce a linear head exactly); load this one with "
            "MultiHeadClassifier.load"
        )

    config = _classifier_config(encoder.config, head, pooling=spec["pooling"], dropout=_dropout(source))
    dtype = next(encoder.parameters()).dtype
    exported = AutoModelForSequenceClassification.from_config(config, dtype=dtype).eval()
    missing, unexpected = exported.model.load_state_dict(encoder.state_dict(), strict=False)
    if missing or unexpected:
        raise DataError(f"{source}: the encoder does not fit {type(exported).__name__} ({missing or unexpected})")
    weight, bias = head_affine(classifier, head)
    _set_head(exported, encoder.final_norm, weight, bias)
    if verify:
        _verify(classifier, exported, head)

    out.mkdir(parents=True, exist_ok=True)
    exported.save_pretrained(out)
    _copy_tokenizer(source, out)
    _write_card(source, out, head_name)
    log.info("head exported", head=head_name, kind=head.kind, source=str(source), output_dir=str(out))
    return out


def head_affine(classifier: Any, head: Any) -> tuple[Any, Any]:
    """The head as ``logits = pooled @ weight.T + bias`` (float64): a CORAL head's shared weight
    repeated for each threshold."""
    import torch

    module = classifier.heads[head.name]
    if head.kind == "coral":
        shared = module.weight.weight.detach().double()  # [1, hidden]
        weight = shared.expand(head.output_size, -1).clone()
        bias = module.bias.detach().double()
    else:
        weight = module.weight.detach().double()
        bias = module.bias.detach().double() if module.bias is not None else torch.zeros(head.output_size, dtype=torch.float64)
    return weight, bias


def _classifier_config(encoder_config: Any, head: Any, *, pooling: str, dropout: float) -> Any:
    import copy

    config = copy.deepcopy(encoder_config)
    if head.is_ordinal:
        id2label = {k: f">= {head.labels[k + 1]}" for k in range(head.output_size)}
        problem_type = "multi_label_classification"
    else:
        id2label = dict(enumerate(head.labels))
        problem_type = "single_label_classification" if head.kind == "softmax" else "multi_label_classification"
    config.id2label = id2label
    config.label2id = {label: k for k, label in id2label.items()}
    config.num_labels = len(id2label)
    config.problem_type = problem_type
    config.classifier_pooling = pooling
    config.classifier_activation = "linear"
    # The dense layer needs a bias exactly when the final norm has one (beta to subtract).
    config.classifier_bias = bool(config.norm_bias)
    config.classifier_dropout = dropout
    config.architectures = ["ModernBertForSequenceClassification"]
    config.sec_cybert_head = {
        "name": head.name,
        "kind": head.kind,
        "labels": list(head.labels),
        "decode": (
            "level = number of outputs with sigmoid > 0.5 (output k: label > k)"
            if head.is_ordinal
            else "argmax"
            if head.kind == "softmax"
            else "labels with sigmoid > 0.5"
        ),
    }
    return config


def _set_head(exported: Any, final_norm: Any, weight: Any, bias: Any) -> None:
    """Give ``exported`` a prediction head equal to ``pooled -> pooled @ weight.T + bias`` (see
    the module docstring for why this is exact)."""
    import torch

    gamma = final_norm.weight.detach().double()
    beta = final_norm.bias.detach().double() if final_norm.bias is not None else torch.zeros_like(gamma)
    if bool((gamma == 0).any()):
        raise DataError(
            "the encoder's final_norm has weights of exactly 0, so its pooled vector cannot be recovered "
            "through a LayerNorm head; load this fine-tune with MultiHeadClassifier.load"
        )
    eps = float(exported.config.norm_eps)
    scale = math.sqrt(eps) / HEAD_NORM_WEIGHT
    prediction = exported.head
    with torch.no_grad():
        prediction.dense.weight.copy_(torch.diag(scale / gamma))
        if prediction.dense.bias is not None:
            prediction.dense.bias.copy_(-scale * beta / gamma)
        prediction.norm.weight.fill_(HEAD_NORM_WEIGHT)
        if prediction.norm.bias is not None:
            prediction.norm.bias.zero_()
        exported.classifier.weight.copy_(weight * gamma)
        exported.classifier.bias.copy_(bias + weight @ beta)


def _verify(classifier: Any, exported: Any, head: Any) -> None:
    import torch

    config = exported.config
    generator = torch.Generator().manual_seed(0)
    length = min(24, int(getattr(config, "max_position_embeddings", 24)))
    ids = torch.randint(0, int(config.vocab_size), (3, length), generator=generator)
    cls_id = getattr(config, "cls_token_id", None)
    if cls_id is not None:
        ids[:, 0] = int(cls_id)
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    mask[2, 2:] = 0
    classifier.eval()
    with torch.no_grad():
        expected = classifier(input_ids=ids, attention_mask=mask)[f"logits_{head.name}"].float()
        got = exported(input_ids=ids, attention_mask=mask).logits.float()
    exact = next(exported.parameters()).dtype == torch.float32
    tolerance = (1e-4 if exact else 3e-2) * (1.0 + float(expected.abs().max()))
    difference = float((expected - got).abs().max())
    if not difference <= tolerance:
        raise DataError(
            f"the exported {head.name} head does not reproduce the fine-tune's logits (largest difference "
            f"{difference:.3g}, allowed {tolerance:.3g}); load it with MultiHeadClassifier.load"
        )


def _read_spec(source: Path) -> dict[str, Any]:
    from sec_cybert.core.files import read_json_record

    if not (source / HEADS_CONFIG).is_file() or not (source / HEADS_WEIGHTS).is_file():
        raise DataError(
            f"{source} is not a fine-tuned directory ({HEADS_CONFIG} and {HEADS_WEIGHTS} are missing); "
            "export from a fine-tune's output, e.g. runs/x/finetune-dapt-tapt"
        )
    return read_json_record(source / HEADS_CONFIG, "the heads of a fine-tune")


def _dropout(source: Path) -> float:
    """The fine-tune's dropout (kept for further training of the export), from its stage.json."""
    try:
        value = json.loads((source / STAGE_RECORD).read_text(encoding="utf-8"))["config"]["dropout"]
        return float(value)
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _copy_tokenizer(source: Path, out: Path) -> None:
    if not any((source / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        log.warning("no tokenizer in the fine-tuned directory; the export has none", source=str(source))
        return
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(source).save_pretrained(out)


def _write_card(source: Path, out: Path, head_name: str) -> None:
    """The fine-tune's card, narrowed to the exported head (none when there is no stage.json)."""
    from sec_cybert.core.context import StageResult
    from sec_cybert.core.files import write_text_atomic
    from sec_cybert.sharing.modelcard import CARD_FILE, render_model_card, stage_chain

    result = StageResult.load(source)
    if result is None:
        log.warning("no stage.json in the fine-tuned directory; the export has no model card", source=str(source))
        return
    text = render_model_card(result, stage_chain(result), export_head=head_name, name=out.name)
    write_text_atomic(out / CARD_FILE, text)
