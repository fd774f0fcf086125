"""Pipeline: chain pretraining stages into variants, fine-tune them, and record the lineage.

The Pipeline is the host: it resolves the registry once, checks every stage against the Stage
Protocol, runs the contamination check, and drives each stage through
:func:`sec_cybert.host.lifecycle.run_stage` (fingerprint, reuse, ``stage.json``, barriers, trackers).

Stages whose ``produces_variant`` is true run in order, each starting from the previous one's
output; each yields a new *variant* of the encoder (``base``, ``+DAPT``, ``+DAPT+TAPT``). The
other stages (fine-tunes) run on the last variant in :meth:`Pipeline.run`, and on every variant,
seed by seed, in :meth:`Pipeline.ablation`. Each stage resumes or reuses what an earlier run
into the same directory left.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pluggy
import structlog
from attrs import validators as v

from sec_cybert.core.components import HardwareProfile, ReadReport, Stage, Tracker, stage_problems
from sec_cybert.core.distributed import is_main_process, wait_for_everyone
from sec_cybert.core.lineage import Lineage, variant_chain
from sec_cybert.corpus.contamination import ContaminationPolicy, ContaminationReport, Exclusions
from sec_cybert.errors import ConfigError
from sec_cybert.host.config_encoder import HUB_ID
from sec_cybert.host.result import PipelineResult
from sec_cybert.host.tracking import trackers_attached
from sec_cybert.plugins.registry import Registry, describe_component, get_plugin_manager, get_registry

if TYPE_CHECKING:
    from sec_cybert.host.config_structure import Problems

log = structlog.get_logger(__name__)

def _trackers(value: Any) -> tuple[Any, ...]:
    """``tracking`` as given: ``"none"``, a registered name, a tracker object, or a list of them."""
    if value is None or value == "none":
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return (value,)
    return tuple(item for item in value if item != "none")


@attrs.frozen
class Pipeline:
    """DAPT -> TAPT -> fine-tune, assembled from components.

    ``encoder`` is a registered encoder name (``tiny-modernbert``, ``modernbert-large``, or a
    plugin's), a local checkpoint directory, or a hub id. ``hardware`` is a registered profile
    name or ``auto``. ``tracking`` names registered trackers (``"wandb"``) or holds tracker
    objects. ``contamination`` is the policy of the check that runs before training.
    """

    encoder: str
    stages: tuple[Stage, ...] = attrs.field(converter=tuple, validator=v.min_len(1))
    hardware: str = "auto"
    seed: int = 42
    tracking: tuple[Any, ...] = attrs.field(default=(), converter=_trackers)
    encoder_options: Mapping[str, Any] = attrs.field(factory=dict)
    contamination: ContaminationPolicy = attrs.field(factory=ContaminationPolicy)
    #: A stage whose input checkpoint or data files changed since it ran: ``refuse`` (default)
    #: stops with what changed; ``redo`` sets its directory aside and runs it again.
    on_input_change: str = attrs.field(default="refuse", validator=v.in_(("refuse", "redo")))
    #: The ``KEY.PATH=VALUE`` overrides the command line applied to the config, for the lineage.
    overrides: tuple[str, ...] = attrs.field(default=(), converter=tuple, eq=False)
    plugin_manager: pluggy.PluginManager | None = attrs.field(default=None, eq=False, repr=False)
    #: The components registered on ``plugin_manager``, collected once for this pipeline (when not
    #: given): every step of a run -- config check, hardware, encoder, stages -- reads this one.
    registry: Registry = attrs.field(
        default=attrs.Factory(lambda self: get_registry(self.plugin_manager), takes_self=True), eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        problems = [
            f"stages[{i}] ({describe_component(stage, registry=self.registry)}) is not a Stage: it needs {', '.join(missing)} "
            "(docs/plugins.md lists what a stage provides)"
            for i, stage in enumerate(self.stages)
            if (missing := stage_problems(stage))
        ]
        if problems:
            raise ConfigError(problems)
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique (they name output directories), got {names}")
        first_user = next((i for i, s in enumerate(self.stages) if not s.produces_variant), len(self.stages))
        if any(stage.produces_variant for stage in self.stages[first_user:]):
            raise ConfigError(
                "stages that produce an encoder variant (DAPT, TAPT) must come before the stages "
                "that use one (fine-tunes)"
            )

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, plugin_manager: pluggy.PluginManager | None = None, source: str | None = None
    ) -> Pipeline:
        """Build from a parsed YAML mapping, reporting every problem at once (see :mod:`sec_cybert.host.config`)."""
        return load_run_config(data, plugin_manager=plugin_manager, source=source).pipeline

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager this pipeline runs with: the one given, or the process-wide one."""
        return self.plugin_manager or get_plugin_manager()

    @property
    def producers(self) -> list[Any]:
        """The stages that make encoder variants (DAPT, TAPT), in order."""
        return [s for s in self.stages if s.produces_variant]

    @property
    def consumers(self) -> list[Any]:
        """The stages that use a variant (fine-tunes): run on the last one, or on each in an ablation."""
        return [s for s in self.stages if not s.produces_variant]

    # -- running -----------------------------------------------------------------------------
    def run(self, run_dir: Path | str) -> PipelineResult:
        """Run every variant-producing stage, then the others on the last variant. Resumes what
        ``run_dir`` holds."""
        from sec_cybert.host.config_encoder import check_encoder

        # What the CLI checks when it loads a config, for a pipeline built in Python too: a stage's
        # sequence length past the encoder's positions, an encoder directory that is not there.
        check_encoder(self)
        run_dir = Path(run_dir)
        if is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
        trackers = self.tracker_objects()
        lineage = Lineage.start(run_dir, _lineage_header(self, self.registry))
        profile = self.hardware_profile()
        lineage.hardware = profile.name
        with trackers_attached(self.pm, trackers):
            return self._run(run_dir, lineage, profile, trackers)

    def _run(
        self, run_dir: Path, lineage: Lineage, profile: HardwareProfile, trackers: tuple[Tracker, ...]
    ) -> PipelineResult:
        from sec_cybert.stages.guards import StopOnSigterm

        # Before anything trains -- the tokenizer of a tiny encoder included -- so a refused
        # overlap costs seconds, not a finished DAPT.
        # SIGTERM here (a scheduler's notice while the check or the tokenizer runs) is one line too.
        with StopOnSigterm("start-up", during="before the first stage (the contamination check, the encoder)"):
            contamination = self.contamination_check()
            contamination.enforce()
            lineage.contamination = contamination.as_dict()
            # The main process builds a local base (tiny encoders); the others then find it built.
            base = self.materialize_encoder(run_dir, contamination) if is_main_process() else None
            wait_for_everyone()
            base = base or self.materialize_encoder(run_dir, contamination)
        result = PipelineResult(
            pipeline=self,
            run_dir=run_dir,
            variants=tuple(variant_chain(base)),
            finetuned={},
            profile=profile,
            lineage=lineage,
            contamination=contamination,
            trackers=trackers,
        )
        lineage.base = result.variants[0].checkpoint
        variants = list(result.variants)
        for stage in self.producers:
            previous = variants[-1]
            variants.append(previous.extended_by(stage.name, result.run_stage(stage, previous, self.seed, previous.tag)))
        result = attrs.evolve(result, variants=tuple(variants))
        for stage in self.consumers:
            result.finetuned[(stage.name, variants[-1].name, self.seed)] = result.run_stage(
                stage, variants[-1], self.seed, variants[-1].tag
            )
        if is_main_process():
            self.pm.hook.on_run_finish(run_dir=run_dir, summary={"lineage": lineage.as_dict()})
        return result

    def ablation(self, run_dir: Path | str, seeds: Sequence[int] | None = None, uncertainty: Any = None) -> Any:
        """``run`` then run every other stage on every variant with the same seeds; write the table
        (``uncertainty``: an :class:`sec_cybert.results.ablation_intervals.Settings` for its intervals and tests)."""
        return self.run(run_dir).ablation(seeds, uncertainty)

    def contamination_check(self) -> ContaminationReport:
        """Pretraining corpora and fine-tune files against the fine-tune eval and holdout texts
        (:mod:`sec_cybert.corpus.contamination`); counts only, ``enforce`` applies the policy.
        Stages take part through their ``pretraining_documents`` and ``labeled_documents``; the
        findings are cached by their corpus files' content (:mod:`~sec_cybert.corpus.contamination_cache`)."""
        from sec_cybert.corpus.contamination import check_contamination
        from sec_cybert.host.identities import stage_identities

        scanned = [s for s in self.stages if hasattr(s, "pretraining_documents")]
        pretraining = {s.name: s.pretraining_documents for s in scanned}
        labeled = {s.name: s.labeled_documents() for s in self.stages if hasattr(s, "labeled_documents")}
        identities = stage_identities(scanned, self.registry)
        return check_contamination(pretraining, labeled, self.contamination, identities=identities)

    def tracker_objects(self) -> tuple[Tracker, ...]:
        """``tracking`` as tracker objects: registered names built with their defaults."""
        return tuple(self.registry.factory("tracker", t)() if isinstance(t, str) else t for t in self.tracking)

    def hardware_profile(self, *, check: bool = True) -> HardwareProfile:
        """The hardware profile ``hardware`` names (``auto``: the ``detect_hardware_profile`` hook);
        with ``check``, a profile this machine cannot run (a GPU profile without a GPU) is refused."""
        from sec_cybert.core.hardware import resolve_profile

        return resolve_profile(self.hardware, self.registry, self.pm, check=check)

    def materialize_encoder(self, run_dir: Path, contamination: ContaminationReport | None = None) -> str:
        """The base encoder as a ``from_pretrained`` reference: a registered encoder is built under
        ``run_dir`` (a tiny one trains its tokenizer on the corpus, less what ``contamination``
        excludes); a checkpoint directory or a hub id is returned as it is."""
        registry = self.registry
        if self.encoder in registry.entries["encoder"]:
            from sec_cybert.core.encoders import encoder_option_problems, option_path

            factory = registry.factory("encoder", self.encoder)
            # A config was checked when it was loaded; a Pipeline built in Python is checked here,
            # before the factory turns a typo into a TypeError.
            problems = encoder_option_problems(self.encoder, factory, dict(self.encoder_options))
            if problems:
                raise ConfigError([f"{option_path(key)}: {message}" for key, message in problems])
            exclusions = contamination.exclusions if contamination else {}
            return factory(run_dir, self._corpus_texts(exclusions), **dict(self.encoder_options))
        plugin_hint = (
            "; if it is an encoder from a plugin, that plugin is not installed or is excluded by SEC_CYBERT_PLUGINS"
            if "/" not in self.encoder
            else ""
        )
        if self.encoder_options:
            raise ConfigError(
                f"encoder_options apply to registered encoders only; {self.encoder!r} is a path or hub id{plugin_hint}"
            )
        if Path(self.encoder).exists() or HUB_ID.match(self.encoder):
            return self.encoder
        raise ConfigError(
            f"encoder {self.encoder!r} is not a registered encoder ({', '.join(registry.names('encoder'))}), "
            f"an existing checkpoint directory, or a hub id (org/name){plugin_hint}"
        )

    def _corpus_texts(self, exclusions: Mapping[str, Exclusions]) -> Iterator[str]:
        """Texts to train a tokenizer on, read only if an encoder asks: the stages' pretraining
        documents (less what the contamination check excludes), or, when no stage has any, the
        training split of their labeled documents."""
        pretraining = [s for s in self.stages if hasattr(s, "pretraining_documents")]
        for stage in pretraining:
            excluded = exclusions.get(stage.name)
            for position, document in enumerate(stage.pretraining_documents(ReadReport())):
                kept = excluded.apply(position, document) if excluded else document
                if kept is not None:
                    yield kept.text
        if not pretraining:
            for stage in self.stages:
                if hasattr(stage, "labeled_documents"):
                    yield from (document.text for document in stage.labeled_documents().get("train", ()))


@attrs.frozen
class RunConfig:
    """A pipeline config file: the pipeline, and where and how to run it."""

    pipeline: Pipeline
    output_dir: Path | None
    ablation_seeds: tuple[int, ...] | None


def _build_trackers(value: Any, registry: Registry, problems: Problems) -> list[Tracker]:
    """``tracking:`` as YAML gives it -- ``none``, a name, ``{kind: NAME, ...}`` or a list of those."""
    from sec_cybert.host.config import build_component

    items = [] if value in (None, "none") else value if isinstance(value, list) else [value]
    built = []
    for index, item in enumerate(items):
        path = "tracking" if not isinstance(value, list) else f"tracking[{index}]"
        if item == "none":
            continue
        spec = {"kind": item} if isinstance(item, str) else item
        built.append(build_component("tracker", spec, path, registry, problems))
    return built


def load_run_config(
    data: Mapping[str, Any], *, plugin_manager: pluggy.PluginManager | None = None, source: str | None = None
) -> RunConfig:
    """Validate a whole pipeline config; raise one ConfigError listing every problem."""
    from sec_cybert.host.config import PipelineSettings, Problems, build, build_component, check

    registry = get_registry(plugin_manager)
    problems = Problems()
    settings = build(
        PipelineSettings,
        {k: val for k, val in data.items() if k not in ("stages", "tracking")},
        "",
        registry,
        problems,
    )
    stages_data = data.get("stages")
    built_stages = []
    if not isinstance(stages_data, list) or not stages_data:
        problems.add("stages", f"got {stages_data!r}; expected a non-empty list of stages")
    else:
        built_stages = [
            build_component("stage", s, f"stages[{i}]", registry, problems) for i, s in enumerate(stages_data)
        ]
    trackers = _build_trackers(data.get("tracking", "none"), registry, problems)
    hardware = data.get("hardware", "auto")
    if isinstance(hardware, str) and hardware != "auto" and hardware not in registry.names("hardware"):
        known = ", ".join(["auto", *registry.names("hardware")])
        problems.add("hardware", f"unknown hardware profile {hardware!r}; known: {known}")
    check(problems, source)
    try:
        pipeline = Pipeline(
            encoder=settings.encoder,
            stages=tuple(built_stages),
            hardware=settings.hardware,
            seed=settings.seed,
            tracking=tuple(trackers),
            encoder_options=settings.encoder_options,
            contamination=settings.contamination,
            on_input_change=settings.on_input_change,
            overrides=tuple(settings.overrides or ()),
            plugin_manager=plugin_manager,
            registry=registry,
        )
    except (ValueError, TypeError, ConfigError) as exc:
        raise ConfigError(str(exc), source=source) from None
    seeds = tuple(settings.ablation_seeds) if settings.ablation_seeds else None
    return RunConfig(pipeline=pipeline, output_dir=settings.output_dir, ablation_seeds=seeds)


def _plugins_used(pipeline: Pipeline, registry: Registry) -> dict[str, dict[str, Any]]:
    """The plugins that provided a component of this run, with their distribution, version and
    the components they provided."""
    from sec_cybert.host.config import registrations_used
    from sec_cybert.plugins.registry import plugin_distributions

    used = registrations_used([*pipeline.stages, *pipeline.tracking], registry)
    for kind, name in (("encoder", pipeline.encoder), ("hardware", pipeline.hardware)):
        if name in registry.entries[kind]:
            used.append(registry.get(kind, name))
    for name in pipeline.tracking:
        if isinstance(name, str) and name in registry.entries["tracker"]:
            used.append(registry.get("tracker", name))
    distributions = plugin_distributions(pipeline.pm)
    plugins: dict[str, dict[str, Any]] = {}
    for registration in used:
        entry = plugins.setdefault(
            registration.plugin,
            {**distributions.get(registration.plugin, {"distribution": None, "version": None}), "components": []},
        )
        component = f"{registration.kind}:{registration.name}"
        if component not in entry["components"]:
            entry["components"].append(component)
    return plugins



def _lineage_header(pipeline: Pipeline, registry: Registry) -> dict[str, Any]:
    """What ``lineage.json`` says about the whole run: encoder, seed, versions, plugins used."""
    import torch
    import transformers

    from sec_cybert.core.version import __version__

    return {
        "encoder": pipeline.encoder,
        "encoder_options": dict(pipeline.encoder_options),
        "seed": pipeline.seed,
        "overrides": list(pipeline.overrides),
        "versions": {
            "sec_cybert": __version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "plugins": _plugins_used(pipeline, registry),
    }

