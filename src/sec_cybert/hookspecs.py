"""Every hook sec_cybert calls. Each docstring here is the reference for plugin authors.

A plugin is a module (or object) with functions marked ``@hookimpl``, found through the
entry-point group ``sec_cybert``::

    # pyproject.toml of your package
    [project.entry-points.sec_cybert]
    my_plugin = "my_package.plugin"

    # my_package/plugin.py
    from sec_cybert import hookimpl

    @hookimpl
    def register_maskers(register):
        register("span", SpanMasker)

Registration hooks receive a ``register(name, factory)`` callback. ``factory`` is a class (an
attrs class, so configs can build it from YAML) or a callable; register classes or factories,
never instances. Names are lower-case letters, digits, ``-``, ``_`` and ``.``; a name already
taken by another plugin raises :class:`~sec_cybert.errors.PluginError` naming both plugins.
The built-in components are registered through these same hooks by
``sec_cybert.default_plugins``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from sec_cybert.stages.context import StageContext, StageResult

PROJECT_NAME = "sec_cybert"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[str, Any], None]


@hookspec
def register_corpus_sources(register: Register) -> None:
    """Register CorpusSource factories.

    ``register(name, cls)``: ``cls(**params)`` must return an object with
    ``iter_documents(report) -> Iterator[Document]`` and ``describe() -> str``
    (see :class:`sec_cybert.components.CorpusSource`). In a config it is picked with
    ``corpus: {kind: NAME, ...params}``. Built-ins: ``jsonl-shards``, ``paragraphs``,
    ``edgar-html`` (cached 10-K HTML, cleaned on the fly).
    """


@hookspec
def register_chunkers(register: Register) -> None:
    """Register Chunker factories.

    ``register(name, cls)``: ``cls(**params)`` has ``tokenize(dataset, tokenizer)``, which maps a
    dataset with a ``text`` column to ``input_ids`` and ``n_tokens`` (plus ``word_ids`` when
    ``provides_word_ids`` is true), and ``group(tokenized)``, which makes the training blocks; a
    token budget acts between the two (see :class:`sec_cybert.components.Chunker`). Picked with
    ``chunker: {kind: NAME, ...}``. Built-ins: ``concat`` (DAPT), ``paragraph`` (TAPT).
    """


@hookspec
def register_maskers(register: Register) -> None:
    """Register Masker factories.

    ``register(name, cls)``: ``cls(**params).mask(input_ids, special_tokens_mask, ...)`` returns
    ``(input_ids, labels)`` for a padded batch and must never mask special or padding tokens
    (see :class:`sec_cybert.components.Masker`). Picked with ``masker: {kind: NAME, ...}``.
    Built-ins: ``token``, ``whole-word``.
    """


@hookspec
def register_hardware_profiles(register: Register) -> None:
    """Register HardwareProfile factories.

    ``register(name, factory)``: ``factory()`` (no arguments) returns a profile (see
    :class:`sec_cybert.components.HardwareProfile`). The name ``auto`` is reserved: it asks
    :func:`detect_hardware_profile`. Built-ins: ``cpu``, ``cuda`` (any GPU), ``rtx3090``
    (the reference procedure's card), ``a100``, ``h100``.
    """


@hookspec
def register_stages(register: Register) -> None:
    """Register Stage factories.

    ``register(name, cls)``: ``cls(**params)`` returns a Stage (``name``, ``kind``,
    ``run(context)``, ``output_dir(context)``; see :class:`sec_cybert.components.Stage`). Picked in a pipeline
    config with ``stages: [{kind: NAME, ...}]``. Built-ins: ``mlm``, ``finetune``.
    """


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoders: named recipes that materialise a base checkpoint.

    ``register(name, factory)``: ``factory(workdir: Path, corpus_texts: Iterable[str], **options) -> str``
    returns a ``from_pretrained`` reference (a local directory or a hub id); ``options`` are the
    pipeline's ``encoder_options``, as keyword arguments. A plugin that adds
    an architecture missing from transformers registers it with the transformers Auto classes
    (``AutoConfig.register``, ``AutoModel.register``, ``AutoModelForMaskedLM.register``) inside
    this hook or at import. Any name that is not registered is treated as a hub id or local path.
    Built-ins: ``tiny-modernbert`` (random init, tokenizer trained on the corpus; no download),
    ``modernbert-base``, ``modernbert-large`` (hub ids).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``sec-cybert`` command line, e.g. ``cli.add_command(my_group)``.

    Commands raise :class:`~sec_cybert.errors.SecCybertError` for user errors; the CLI prints
    them as one line and exits non-zero.
    """


@hookspec(firstresult=True)
def detect_hardware_profile(candidates: Mapping[str, Any]) -> str | None:
    """Pick the profile name ``auto`` resolves to, or return ``None`` to let the next plugin decide.

    ``candidates`` maps registered profile names to their factories. The first non-``None``
    answer wins; the built-in detector matches the CUDA device name and falls back to ``cpu``.
    """


@hookspec(firstresult=True)
def stage_run(stage: Any, context: StageContext) -> StageResult | None:
    """Run one stage and return its :class:`~sec_cybert.stages.context.StageResult`.

    The built-in implementation calls ``stage.run(context)``. Plugins usually *wrap* it rather
    than replace it::

        @hookimpl(wrapper=True)
        def stage_run(stage, context):
            start_tracking(stage.name)
            try:
                result = yield          # the stage runs here; raises if it failed
            finally:
                finish_tracking()
            return result

    Tracking (W&B) attaches this way. A non-wrapper implementation that returns a result
    replaces the built-in run (the first non-``None`` result wins).
    """


@hookspec
def on_train_event(event: str, stage_name: str, step: int, metrics: Mapping[str, float]) -> None:
    """Observe training: ``event`` is ``"log"``, ``"evaluate"`` or ``"checkpoint"``.

    Called on the main process only, at the Trainer's logging, evaluation and save points.
    ``metrics`` holds what the Trainer reported (loss, learning_rate, grad_norm, epoch, eval_loss
    ...) plus ``tokens_seen``, ``tokens_per_second`` and, for MLM stages, ``eval_perplexity``. Must not raise: a failing observer would
    stop training.
    """
