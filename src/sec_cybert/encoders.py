"""Encoders: named recipes that produce a base checkpoint a stage can ``from_pretrained``.

A hub encoder is just its id: transformers downloads and caches it on first use
(``answerdotai/ModernBERT-large`` is what the reference procedure adapts). ``tiny-modernbert``
builds a randomly initialised ModernBERT of a few layers with a byte-level BPE tokenizer trained
on the run's own corpus, so the whole pipeline runs offline on a CPU in minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog

from sec_cybert.errors import ConfigError

log = structlog.get_logger(__name__)

HUB_ALIASES = {
    "modernbert-base": "answerdotai/ModernBERT-base",
    "modernbert-large": "answerdotai/ModernBERT-large",
    "deberta-v3-base": "microsoft/deberta-v3-base",
}

RECIPE_FILE = "encoder-recipe.json"

SPECIAL_TOKENS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
    "unk_token": "[UNK]",
}


def hub_encoder(model_id: str):
    """A factory that returns ``model_id`` unchanged: transformers resolves and caches it."""

    def factory(workdir: Path, corpus_texts: Iterable[str], **options: Any) -> str:
        return model_id

    factory.__doc__ = f"The hub checkpoint {model_id} (downloaded and cached by transformers on first use)."
    return factory


def train_bpe_tokenizer(texts: Iterable[str], *, vocab_size: int = 4096, model_max_length: int = 8192) -> Any:
    """A byte-level BPE tokenizer (ModernBERT's family) trained on ``texts``, with BERT-style specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = [SPECIAL_TOKENS[k] for k in ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token")]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=True),
            processors.TemplateProcessing(
                single="[CLS] $A [SEP]",
                pair="[CLS] $A [SEP] $B [SEP]",
                special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
            ),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=model_max_length, **SPECIAL_TOKENS
    )


def write_random_encoder(
    workdir: Path,
    corpus_texts: Iterable[str],
    build_model: Callable[[Any], Any],
    *,
    name: str,
    recipe: Mapping[str, Any],
) -> str:
    """Write a random-init model and a BPE tokenizer trained on ``corpus_texts`` to ``workdir/base``.

    ``build_model(tokenizer)`` returns the model (its config sized to the tokenizer). ``recipe``
    (the encoder's options; ``vocab_size``, ``max_position_embeddings`` and ``seed`` are read
    from it to train the tokenizer and seed the weights) is written last, marking a complete base: a re-run with the same
    recipe reuses the base, so resumed stages start from the same weights; another recipe in
    the same directory is refused. Plugin encoders (``tiny-neobert``) use this too.
    """
    import torch

    target = Path(workdir) / "base"
    recipe_path = target / RECIPE_FILE
    recipe = {**recipe, "encoder": name}
    if recipe_path.is_file():
        built_with = json.loads(recipe_path.read_text())
        if built_with != recipe:
            changed = sorted(k for k in recipe if built_with.get(k) != recipe[k])
            raise ConfigError(
                f"{target} holds a {built_with.get('encoder', 'model')} built with other encoder_options "
                f"({', '.join(changed)}); use another output directory, or delete that one to start over"
            )
        return str(target)
    tokenizer = train_bpe_tokenizer(
        corpus_texts, vocab_size=recipe["vocab_size"], model_max_length=recipe["max_position_embeddings"]
    )
    torch.manual_seed(recipe["seed"])
    model = build_model(tokenizer)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    recipe_path.write_text(json.dumps(recipe, indent=2) + "\n")
    log.info(
        "random-init encoder written",
        encoder=name,
        path=str(target),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    return str(target)


def tiny_modernbert(
    workdir: Path,
    corpus_texts: Iterable[str],
    *,
    vocab_size: int = 4096,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 1024,
    seed: int = 0,
) -> str:
    """A random-init ModernBERT of a few layers, tokenizer trained on the corpus, in ``workdir/base``."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    sizes = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "intermediate_size": intermediate_size,
        "max_position_embeddings": max_position_embeddings,
    }

    def build(tokenizer: Any) -> Any:
        config = ModernBertConfig(
            vocab_size=len(tokenizer),
            local_attention=min(128, max_position_embeddings),
            pad_token_id=tokenizer.pad_token_id,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            **sizes,
        )
        return ModernBertForMaskedLM(config)

    return write_random_encoder(
        workdir,
        corpus_texts,
        build,
        name="tiny-modernbert",
        recipe={**sizes, "vocab_size": vocab_size, "seed": seed},
    )
