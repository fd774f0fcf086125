"""Every hook sec_cybert calls, with its contract. The docstrings of ``sec_cybert/plugins/hookspecs.py``
are the reference for plugin authors: ``docs/hooks.md`` is generated from them
(``python -m sec_cybert.plugins.hookdoc > docs/hooks.md``), and a test fails when the two differ.

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

An implementation may accept fewer parameters than the spec names; pluggy passes only those it
asks for. ``docs/plugins.md`` walks through a complete plugin package.

**Registration hooks** (``register_*``) receive a ``register(name, factory)`` callback;
``Register`` below is ``Callable[[str, Any], None]``. The host calls every implementation with a
callback of its own, so it knows which plugin registered which name. ``register`` raises
:class:`~sec_cybert.errors.PluginError` when the name is not lower-case letters, digits, ``-``,
``_`` and ``.`` (starting with a letter or digit); when ``factory`` is not callable (register a
class or a factory function, never an instance: pluggy compares plugins with ``==``, and two
equal frozen instances would collide); or when the name is taken by a *different* factory (the
message names both plugins). The registry is collected afresh on every ``get_registry()`` call,
so keep these hooks cheap and free of side effects, and import heavy modules inside the
component, not at registration. Components a config builds (corpus sources, chunkers, maskers,
stages, trackers) should be attrs classes: the config loader builds them field by field from
``{kind: NAME, ...params}`` and reports every bad value with its key path. The built-in
components are registered through these same hooks by ``sec_cybert.default_plugins``, one
entry point each (``builtin-corpus`` ...).

``StageContext``, ``StageOutcome`` and ``StageResult`` live in ``sec_cybert.core.context``;
the Protocols named below live in ``sec_cybert.core.components``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from sec_cybert.core.context import StageContext, StageOutcome

PROJECT_NAME = "sec_cybert"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[str, Any], None]


@hookspec
def register_corpus_sources(register: Register) -> None:
    """Register CorpusSource factories.

    ``register(name, cls)``: ``cls(**params)`` returns an object with
    ``iter_documents(report) -> Iterator[Document]`` and ``describe() -> str`` (the
    ``CorpusSource`` Protocol). A source never drops a record silently: it raises ``DataError``
    naming the file and line, or counts the skip with ``report.skip(reason, where)``. It may
    leave ``report.kept`` at 0: the host counts the documents it receives and sets it (a source
    that counts must count what it yields; the host warns when the two differ). The MLM stage
    fingerprints the content of the source's files, found through its ``files()`` method when it
    has one, else its ``path`` (a file or a directory); a source with neither is not
    fingerprinted, and a changed corpus goes unnoticed. Picked in a
    config with ``corpus: {kind: NAME, ...params}``. Built-ins: ``jsonl-shards``, ``paragraphs``
    (plugin ``builtin-corpus``) and ``edgar-html``, cached 10-K HTML cleaned on the fly (plugin
    ``builtin-edgar``).
    """


@hookspec
def register_chunkers(register: Register) -> None:
    """Register Chunker factories.

    ``register(name, cls)``: ``cls(**params)`` returns a Chunker: ``provides_word_ids: bool``;
    ``tokenize(documents, tokenizer)``, which maps a ``datasets.Dataset`` with a ``text`` column to
    the same rows with ``input_ids`` and ``n_tokens``, the tokens that will train (and
    ``word_ids``, one per token and -1 for special tokens, when ``provides_word_ids``; a chunker
    that truncates also writes ``tokens_truncated``, which the stage report and ``plan`` count);
    and ``group(tokenized)``, which makes the training blocks (``input_ids``, plus ``word_ids``).

    The MLM stage applies its ``max_tokens`` budget and its validation split between the two and
    calls ``group`` once per side, so ``group`` receives a *selection* of rows (an indices
    mapping over the full Arrow table): read them through ``dataset.iter``, ``dataset[column]``
    or after ``dataset.flatten_indices()``, never through ``dataset.data``, which still holds
    every row. ``tokenize``'s output is cached on disk under a key of the documents, the
    tokenizer, the chunker's class and ``tokenize_settings()`` -- an optional method returning a
    JSON-able dict of the settings ``tokenize`` depends on (without it, every attrs field) -- and
    the versions of sec_cybert and of the third-party distribution that registered the chunker.
    Picked with ``chunker: {kind: NAME, ...}``. Built-ins: ``concat`` (DAPT),
    ``paragraph`` (TAPT), ``packed`` (TAPT, whole paragraphs packed into rows). A chunker whose
    blocks carry ``position_ids`` that restart at 0 where a document starts gets attention
    that stops there (``sec_cybert.datapath.document_attention``); one that declares
    ``provides_position_ids`` has its encoder checked for that before the corpus is read.
    """


@hookspec
def register_maskers(register: Register) -> None:
    """Register Masker factories.

    ``register(name, cls)``: ``cls(**params)`` returns an object with ``needs_word_ids: bool``
    and ``mask(input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None,
    generator=None)``, which returns ``(input_ids, labels)`` for a padded ``[B, T]`` batch: the
    corrupted inputs, and labels with -100 wherever no loss is taken. It must never choose a
    special or padding token (both are marked in ``special_tokens_mask``), and draws its random
    numbers from ``generator`` when one is given, so runs are reproducible. A stage refuses, when
    it is built, a masker that needs word ids beside a chunker that does not provide them.
    Picked with ``masker: {kind: NAME, ...}``. Built-ins: ``token``, ``whole-word``
    (docs/masking.md).
    """


@hookspec
def register_hardware_profiles(register: Register) -> None:
    """Register HardwareProfile factories.

    ``register(name, factory)``: ``factory()`` takes no arguments and returns a profile: ``name``,
    ``device`` (``cpu`` or ``cuda``), ``bf16``, ``tf32``, ``torch_compile``,
    ``attn_implementation``, ``optim``, ``dataloader_num_workers``, ``memory_gib``,
    ``tokens_per_second``, ``throughput_source`` and ``problems()`` -- everything the host reads
    (the ``HardwareProfile`` Protocol; ``sec_cybert.core.hardware.Profile`` is a ready-made attrs
    class, and any object with these attributes works). A stage setting left unset takes the
    profile's value; one the machine cannot honour is downgraded with one log line.
    ``problems()`` says why the profile cannot run here (empty when it can); ``plan`` skips that
    check, so a laptop plans a GPU run. The name ``auto`` is reserved: it asks
    ``detect_hardware_profile``. Built-ins: ``cpu``, ``cuda`` (any GPU), ``rtx3090`` (the
    reference procedure's card), ``a100``, ``h100`` (also H200).
    """


@hookspec
def register_stages(register: Register) -> None:
    """Register Stage factories.

    ``register(name, cls)``: ``cls(**params)`` returns a Stage: ``name``, ``produces_variant``,
    ``output_dir(context) -> Path`` and ``run(context) -> StageOutcome``, plus any of the optional
    capabilities ``pretraining_documents``, ``labeled_documents``, ``plan``, ``ablation_metrics``
    and ``data_files`` (the ``Stage`` Protocol says what each means). The host does the
    bookkeeping around ``run`` -- fingerprint (which includes the versions of the third-party
    distributions that provided the stage or a component in it), reuse of a finished result,
    ``stage.json``, barriers between ranks, lineage, trackers -- so ``run`` does the stage's own
    work only, writing into ``context.output_dir``; ``context.hardware`` is the resolved hardware
    profile (``Training.runtime(context.hardware)`` turns it into the settings to run with), and
    Trainer-based stages build their Trainer with
    :func:`sec_cybert.stages.trainer.run_trainer`. ``plan(planning)`` receives a
    ``sec_cybert.planning.plan.PlanContext`` (``tokenizer``, ``seed``, ``world_size``, ``profile``,
    ``exclusions``) and returns a ``sec_cybert.planning.plan.StagePlan(stage=name, ...)`` with the counts
    its own data path found. A stage that uses variants puts ``evaluated_on`` (the split its
    final metrics were measured on) in its metrics; the ablation table says "split not reported"
    without it. ``produces_variant`` decides the chaining: a
    stage that produces a variant starts from the previous one's output and must come before the
    stages that use one. ``output_dir`` takes the context (run directory, variant tag ...), so a
    stage can name its directory after the variant it runs on, as ``finetune`` does
    (``finetune-<tag>``). Picked in a pipeline config with ``stages: [{kind: NAME, ...}]``; the
    Pipeline checks each stage against the Protocol when it is built and names what is missing.
    Built-ins: ``mlm``, ``finetune``.
    """


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoders: named recipes that materialise a base checkpoint.

    ``register(name, factory)``: ``factory(workdir: Path, corpus_texts: Iterable[str], **options)
    -> str`` returns a ``from_pretrained`` reference (a local directory or a hub id). ``options``
    are the pipeline's ``encoder_options`` as keyword arguments, so a factory accepts every option
    its users may set. ``corpus_texts`` iterates the stages' pretraining documents, less what the
    contamination check excludes (or the fine-tune training texts when no stage pretrains); read
    it only if you need it (``tiny-modernbert`` trains its tokenizer on it).

    A factory that writes under ``workdir`` is called again on every run into that directory and
    on every process of a multi-process run (the main process first, the others after it), so it
    reuses what it wrote and refuses a directory built with other options rather than reusing it
    silently (``tiny-modernbert`` records them in ``base/encoder-recipe.json``). A plugin that
    adds an architecture missing from transformers registers it with the Auto classes
    (``AutoConfig.register``, ``AutoModel.register``, ``AutoModelForMaskedLM.register``) inside
    this hook or at import. A name that is not registered is treated as a hub id or a local path.
    Built-ins: ``tiny-modernbert`` (random init, tokenizer trained on the corpus, no download),
    ``modernbert-base``, ``modernbert-large``, ``deberta-v3-base`` (hub ids).
    """


@hookspec
def register_trackers(register: Register) -> None:
    """Register Tracker factories: where a run is recorded (W&B, MLflow, TensorBoard, a file).

    ``register(name, cls)``: ``cls(**params)`` returns a Tracker with ``start_stage(context,
    config)``, ``log(context, event, step, metrics)``, ``finish_stage(context, result)`` and
    ``finish_run(run_dir, summary)`` (the ``Tracker`` Protocol). The host calls them on the main
    process: around every stage it runs (not one it reuses), at every training event, after the
    pipeline (``summary["lineage"]``) and after an ablation (``summary["ablation"]``). Picked in a
    pipeline config with ``tracking: NAME``, ``tracking: {kind: NAME, ...params}`` or a list of
    them; in Python, ``Pipeline(tracking=[...])`` takes names or tracker objects. A tracker that
    cannot work here (its package missing) raises in ``cls(...)``, so the run stops before
    training; an error raised later is logged and the tracker is left out for the rest of the
    stage -- tracking never stops training. Built-ins: ``wandb``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``sec-cybert`` command line, e.g. ``cli.add_command(my_group)``.

    Called once, when ``sec-cybert`` starts. Commands raise
    :class:`~sec_cybert.errors.SecCybertError` for user errors; the CLI prints them as one line
    each and exits with status 2. The built-in ``corpus`` group is added this way (plugin
    ``builtin-edgar``).
    """


@hookspec(firstresult=True)
def detect_hardware_profile(candidates: Mapping[str, Any]) -> str | None:
    """Pick the profile name ``auto`` resolves to, or return ``None`` to let the next plugin decide.

    ``candidates`` maps registered profile names to their factories; the first non-``None``
    answer wins. The built-in implementation is ``trylast``, so any plugin's answer comes first:
    it returns ``cpu`` when no CUDA device is visible, else the first profile (in name order)
    whose ``matches_device(torch.cuda.get_device_name(0))`` is true, else ``cuda``.
    """


@hookspec(firstresult=True)
def stage_run(stage: Any, context: StageContext) -> StageOutcome | None:
    """Run one stage's own work and return its ``StageOutcome`` (metrics and report).

    The host calls this once per stage run it does not reuse, after it has claimed
    ``context.output_dir`` and before it writes ``stage.json``. The built-in implementation
    (plugin ``builtin-runner``, ``trylast``) calls ``stage.run(context)``. Plugins usually *wrap*
    it rather than replace it::

        @hookimpl(wrapper=True)
        def stage_run(stage, context):
            started = time.perf_counter()
            outcome = yield          # the stage runs here; raises if it failed
            print(stage.name, context.variant, time.perf_counter() - started)
            return outcome

    A wrapper yields exactly once and returns the outcome it received (or another); if the stage
    raised, the exception is thrown at the ``yield``. A non-wrapper implementation that returns
    an outcome replaces the built-in run. To record runs somewhere, write a tracker
    (``register_trackers``) or observe ``on_stage_start`` / ``on_train_event`` /
    ``on_stage_finish`` instead.
    """


@hookspec
def on_stage_start(context: StageContext, config: Mapping[str, Any]) -> None:
    """A stage is about to run (not called for a finished stage that is reused).

    Called on the main process only, after the host claimed ``context.output_dir`` and before
    ``stage_run``; ``config`` is the resolved config the host records in ``stage.json``. The
    pipeline's trackers receive it as ``Tracker.start_stage``: events, stage boundaries and run
    summaries reach observers and trackers through these hooks, one channel. Must not raise.
    """


@hookspec
def on_stage_finish(context: StageContext, result: Any) -> None:
    """A stage run ended: ``result`` is its ``StageResult``, or ``None`` when it raised.

    Called on the main process only, after ``stage.json`` is written (or the stage failed),
    also when training stops with an error. Trackers receive it as ``Tracker.finish_stage``.
    Must not raise.
    """


@hookspec
def on_run_finish(run_dir: Any, summary: Mapping[str, Any]) -> None:
    """A pipeline run (``summary["lineage"]``) or an ablation (``summary["ablation"]``) ended.

    Called on the main process only; ``run_dir`` is the run's directory (a ``Path``). Trackers
    receive it as ``Tracker.finish_run``. Must not raise.
    """


@hookspec
def on_train_event(
    event: str, stage_name: str, step: int, metrics: Mapping[str, float], context: StageContext
) -> None:
    """Observe training: ``event`` is ``"log"``, ``"evaluate"``, ``"checkpoint"`` or ``"collapsed"``.

    Called on the main process only, at the Trainer's logging, evaluation and save points;
    ``step`` is the optimizer step. ``metrics`` holds what the Trainer reported (``loss``,
    ``learning_rate``, ``grad_norm``, ``epoch``, ``eval_loss`` ...); to ``"log"`` events
    sec_cybert adds ``tokens_seen`` (non-padding input tokens so far); from the second log on, over
    the time since the last one, ``tokens_per_second`` (every token slot, padding included),
    ``real_tokens_per_second`` (non-padding), ``padding_efficiency`` (their ratio) and, on a GPU
    whose peak is known, ``mfu`` (model FLOPs utilisation, formula in ``sec_cybert.planning.flops``); and,
    in MLM stages, ``eval_perplexity`` (e^eval_loss) when the log holds an ``eval_loss``.
    ``"checkpoint"`` events carry ``{"step": step}``. A ``"collapsed"`` event comes once, after a
    fine-tune whose final predictions all fell in one class, with ``{"<head>_collapsed": 1.0}``
    for each such head (the class is in its ``<head>_collapsed_to`` metric and the warning line).
    ``context`` is the stage's ``StageContext``: its ``variant`` (``base``, ``+DAPT`` ...),
    ``tag``, ``seed``, ``run_dir`` and ``output_dir`` tell the fine-tunes of an ablation apart. The
    pipeline's trackers get the same call, through this hook, as their ``log`` method. Must not
    raise: an exception here stops training.
    """
