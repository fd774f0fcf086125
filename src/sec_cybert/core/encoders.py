"""Encoders: named recipes that produce a base checkpoint a stage can ``from_pretrained``.

A hub encoder is just its id: transformers downloads and caches it on first use
(``answerdotai/ModernBERT-large`` is what the reference procedure adapts). ``tiny-modernbert``
builds a randomly initialised ModernBERT of a few layers with a byte-level BPE tokenizer trained
on the run's own corpus, so the whole pipeline runs offline on a CPU in minutes.

An encoder's options are checked before anything is built -- when the config is loaded
(:func:`encoder_option_problems`, called by :mod:`sec_cybert.host.config`) and again when the encoder
is called from Python: an unknown option (with a did-you-mean), a value of the wrong type and an
impossible model shape (``hidden_size`` not divisible by ``num_attention_heads``, zero layers) are
each one line naming the key.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import typing
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


#: Options that give a model's shape: each a positive integer wherever an encoder takes it.
SHAPE_OPTIONS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)

#: Problems, as (option, message) pairs; option ``""`` is about the options as a whole.
OptionProblems = list[tuple[str, str]]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def model_shape_problems(values: Mapping[str, Any]) -> OptionProblems:
    """Shape options that no transformer can be built with; ``values`` holds options and defaults."""
    problems = [
        (key, f"got {values[key]!r}; must be a positive integer")
        for key in SHAPE_OPTIONS
        if key in values and not _positive_int(values[key])
    ]
    hidden, heads = values.get("hidden_size"), values.get("num_attention_heads")
    if _positive_int(hidden) and _positive_int(heads) and hidden % heads:
        near = (
            d for step in range(1, 1024) for d in (heads + step, heads - step) if d > 0 and hidden % d == 0
        )
        nearest = next(near, None)
        hint = f"; e.g. num_attention_heads {nearest}" if nearest else ""
        problems.append(
            (
                "hidden_size",
                f"hidden_size {hidden} is not divisible by num_attention_heads {heads} (each head gets "
                f"hidden_size / num_attention_heads dimensions){hint}",
            )
        )
    return problems


def _type_ok(value: Any, tp: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True  # other annotations are the encoder's own business


def encoder_option_problems(
    name: str, factory: Callable[..., Any], options: Mapping[str, Any]
) -> OptionProblems:
    """What is wrong with ``options`` for the registered encoder ``name``; ``[]`` when nothing is.

    The options an encoder takes are its factory's keyword parameters (after ``workdir`` and
    ``corpus_texts``), or ``factory.encoder_options`` when it declares them; a factory taking
    ``**options`` without declaring them accepts any. ``factory.check_options(values)`` (values:
    the defaults updated with ``options``), if there is one, adds the encoder's own checks.
    """
    try:
        parameters = list(inspect.signature(factory).parameters.values())[2:]
    except (TypeError, ValueError):
        return []
    named = {p.name: p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    declared = getattr(factory, "encoder_options", None)
    if declared is not None:
        allowed: list[str] | None = list(declared)
    elif any(p.kind is p.VAR_KEYWORD for p in parameters):
        allowed = None
    else:
        allowed = list(named)
    if allowed == [] and options:
        given = ", ".join(map(str, options))
        return [("", f"encoder {name!r} is a hub checkpoint and takes no options (got {given}); remove them")]
    problems: OptionProblems = []
    for key in options:
        if allowed is None or key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append((key, f"unknown option of encoder {name!r}; {hint}allowed: {', '.join(allowed)}"))
    try:
        hints = typing.get_type_hints(inspect.unwrap(factory))
    except Exception:  # an annotation that does not resolve is no reason to refuse the options
        hints = {}
    for key, value in options.items():
        if key in named and key in hints and not _type_ok(value, hints[key]):
            expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[
                hints[key]
            ]
            problems.append((key, f"got {value!r}; expected {expected}"))
    if problems:
        return problems
    values = {k: p.default for k, p in named.items() if p.default is not p.empty} | dict(options)
    check = getattr(factory, "check_options", None)
    shape = model_shape_problems(values) + (list(check(values)) if check is not None else [])
    for key, message in dict.fromkeys(shape):
        if key not in options and key == "hidden_size" and "num_attention_heads" in options:
            key = "num_attention_heads"  # name what the user set
        problems.append((key, message))
    return problems


def _raise_option_problems(problems: OptionProblems) -> None:
    if problems:
        raise ConfigError([f"{option_path(key)}: {message}" for key, message in problems])


def option_path(key: str) -> str:
    """The config key path of an encoder option (``""``: the options as a whole)."""
    return f"encoder_options.{key}" if key else "encoder_options"


def checked_encoder(name: str, check: Callable[[Mapping[str, Any]], OptionProblems] | None = None):
    """Decorate an encoder factory so that a call with bad options is one ConfigError per problem,
    before any work; ``check(values)`` adds the encoder's own checks (see
    :func:`encoder_option_problems`). The decorated factory keeps its signature."""

    def decorate(fn: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(fn)
        def factory(workdir: Path, corpus_texts: Iterable[str], **options: Any) -> str:
            _raise_option_problems(encoder_option_problems(name, fn, options))
            return fn(workdir, corpus_texts, **options)

        if check is not None:
            fn.check_options = check  # type: ignore[attr-defined]
            factory.check_options = check  # type: ignore[attr-defined]
        return factory

    return decorate


def hub_encoder(model_id: str):
    """A factory that returns ``model_id`` unchanged: transformers resolves and caches it.

    A hub checkpoint has its own shape, so it takes no ``encoder_options``: any given is refused
    rather than ignored.
    """

    def factory(workdir: Path, corpus_texts: Iterable[str], **options: Any) -> str:
        _raise_option_problems(encoder_option_problems(model_id, factory, options))
        return model_id

    factory.__doc__ = f"The hub checkpoint {model_id} (downloaded and cached by transformers on first use)."
    factory.encoder_options = ()  # type: ignore[attr-defined]
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

    _raise_option_problems(model_shape_problems(recipe))
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


def _modernbert_problems(values: Mapping[str, Any]) -> OptionProblems:
    """ModernBERT's rotary embeddings rotate pairs of dimensions: each head needs an even number."""
    hidden, heads = values.get("hidden_size"), values.get("num_attention_heads")
    if _positive_int(hidden) and _positive_int(heads) and hidden % heads == 0 and (hidden // heads) % 2:
        return [
            (
                "hidden_size",
                f"hidden_size / num_attention_heads = {hidden // heads} must be even "
                "(ModernBERT's rotary position embeddings rotate pairs of dimensions)",
            )
        ]
    return []


@checked_encoder("tiny-modernbert", _modernbert_problems)
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
