"""The host's side of a stage: everything around ``stage.run(context)``.

For every stage the Pipeline resolves the config, fingerprints it with its input, claims the
output directory, reuses a finished result or records the start, runs the stage through the
``stage_run`` hook, writes ``stage.json``, waits for every rank, and announces the stage's start,
events and end through the hooks (where the run's trackers hear them, :mod:`sec_cybert.host.tracking`). A stage
-- built-in or a plugin's -- does none of this itself.

A stage records a fingerprint of its resolved config, its input checkpoint, the seed and what
the contamination check removed from its corpus when it starts (``stage-started.json``) and
when it finishes (``stage.json``). Re-running the same stage into the same directory reuses a
finished result, or lets the Trainer resume from its last checkpoint; a *different* run in that
directory is refused, because resuming one run's optimizer state under another run's settings
would silently mix the two.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pluggy
import structlog

from sec_cybert.core.components import Stage
from sec_cybert.core.context import FINGERPRINT, StageContext, StageOutcome, StageResult
from sec_cybert.core.distributed import is_main_process, wait_for_everyone
from sec_cybert.core.files import file_digest, files_under, read_json_record, write_json_atomic
from sec_cybert.errors import ConfigError, PluginError
from sec_cybert.host.collapse import warn_if_collapsed
from sec_cybert.plugins.registry import Registry, third_party_versions

STARTED_RECORD = "stage-started.json"

log = structlog.get_logger(__name__)


def fingerprint_of(
    settings: Mapping[str, Any], context: StageContext, plugins: Mapping[str, str] | None = None
) -> str:
    """Hash of what makes a run this run: the stage's settings that differ from their defaults
    (``unstructure(stage, omit_defaults=True)``), its input, the seed, what the contamination
    check removed from its corpus, and ``plugins``: ``{distribution: version}`` of the
    third-party packages that provided the stage or a component in it
    (:func:`sec_cybert.plugins.registry.third_party_versions`), since upgrading one can change what the
    stage computes.

    Defaults are left out so that a setting added in a later release (with a default that keeps
    the old behaviour) does not make every earlier run directory look like a different run; for
    the same reason ``plugins`` is only in the hash when it is not empty, so a run of built-ins
    hashes as it did before plugin versions were recorded.
    """
    identity: dict[str, Any] = {
        "config": settings,
        "init_from": _portable(context.init_from, context.run_dir),
        "seed": context.seed,
    }
    if context.exclusions:
        # Other holdout texts removed from the corpus make another run.
        identity["exclusions"] = context.exclusions.digest
    if plugins:
        identity["plugins"] = dict(plugins)
    payload = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _identity_settings(stage: Stage, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The stage's settings less its fields marked ``metadata={FINGERPRINT: False}``."""
    if not attrs.has(type(stage)):
        return dict(settings)
    operational = {f.name for f in attrs.fields(type(stage)) if f.metadata.get(FINGERPRINT) is False}
    return {k: v for k, v in settings.items() if k not in operational}


def _portable(init_from: str, run_dir: Path) -> str:
    """The input checkpoint as the fingerprint sees it: relative to the run when inside it.

    So 'runs/demo' and '/home/me/runs/demo' are the same run, and a run directory can move.
    """
    path = Path(init_from)
    if not path.exists():
        return init_from  # a hub id
    resolved = path.resolve()
    try:
        return "<run>/" + resolved.relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return str(resolved)


_WEIGHTS = (".safetensors", ".bin", ".pt")


def input_digests(stage: Stage, context: StageContext) -> dict[str, Any]:
    """What the stage reads, by content: the weights of ``init_from`` (a local checkpoint) and
    the files of its data (its ``data_files()`` capability, when it has one)."""
    source = Path(context.init_from)
    weights = sorted(p for p in source.iterdir() if p.suffix in _WEIGHTS) if source.is_dir() else []
    data = list(getattr(stage, "data_files", tuple)())
    return {
        "init_from": {p.name: file_digest(p) for p in weights},
        "data": {str(p): file_digest(p) for p in files_under(data)},
    }


def _changes(recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    if not recorded:
        return []  # a record written before inputs were fingerprinted
    changes = []
    for part, what in (("init_from", "weights of the input checkpoint"), ("data", "data file")):
        old, new = recorded.get(part, {}), current.get(part, {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                state = "removed" if name not in new else "added" if name not in old else "changed"
                changes.append(f"{what} {name} {state}")
    return changes


def _what_differs(record: Mapping[str, Any], config: Mapping[str, Any], context: StageContext) -> str:
    """The recorded run against this one: the settings that differ (old -> new) and the input."""
    from sec_cybert.host.config_diff import differences, shown, summary

    lines = differences(record.get("config") or {}, config)
    old_input = record.get("init_from")
    if old_input is not None and _portable(old_input, context.run_dir) != _portable(context.init_from, context.run_dir):
        lines.append(f"init_from: {shown(old_input)} -> {shown(context.init_from)}")
    if not lines:
        return "its config and input checkpoint are the same, so the seed, the corpus exclusions or a plugin's version differ"
    return summary(lines)


def claim_output_dir(
    out: Path,
    fingerprint: str,
    config: Mapping[str, Any],
    context: StageContext,
    inputs: Mapping[str, Any],
    on_input_change: str = "refuse",
) -> StageResult | None:
    """Create ``out``; return the finished result of this very run if there is one, else record
    the start. Another run's directory is refused; so is a run whose inputs changed since, unless
    ``on_input_change`` is ``redo`` (the old directory is then set aside and the stage runs again)."""
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
    wait_for_everyone()
    finished = StageResult.load(out)
    started_path = out / STARTED_RECORD
    started = read_json_record(started_path, "a started stage's record") if started_path.is_file() else {}
    recorded = finished.fingerprint if finished else started.get("fingerprint")
    if recorded is not None and recorded != fingerprint:
        record = {"config": finished.config, "init_from": finished.init_from} if finished else started
        raise ConfigError(
            f"{out} holds a run of this stage with a different config, input or seed: "
            f"{_what_differs(record, config, context)}; "
            "use another output directory, or delete that one to start over"
        )
    changes = _changes(finished.inputs if finished else started.get("inputs"), inputs)
    if changes:
        listed = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
        if on_input_change != "redo":
            raise ConfigError(
                f"{out} was trained on other inputs than the ones here now ({listed}); "
                "restore them, or set on_input_change: redo to train this stage again (its old "
                "directory is kept beside it)"
            )
        aside = out.with_name(f"{out.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning("inputs changed: stage redone", output_dir=str(out), old=str(aside), changes=listed)
        wait_for_everyone()
        if is_main_process():
            os.replace(out, aside)
            out.mkdir(parents=True)
        wait_for_everyone()
        finished = None
    if finished is not None:
        # Where the record is now, not where it was written: a run directory can move.
        return attrs.evolve(finished, output_dir=out)
    wait_for_everyone()  # every rank has read the old record before the main process replaces it
    if is_main_process():
        record = {"fingerprint": fingerprint, "config": config, "init_from": context.init_from, "inputs": inputs}
        write_json_atomic(started_path, record)
    return None


def _write_card(result: StageResult, seed: int) -> None:
    """A model card beside the weights: it describes a finished stage, so it never fails one."""
    from sec_cybert.sharing.modelcard import stage_chain, write_model_card

    try:
        write_model_card(result, stage_chain(result), seed=seed)
    except Exception as exc:  # noqa: BLE001 - the stage is done; a card is a courtesy
        log.warning("model card not written", stage=result.stage, error=f"{type(exc).__name__}: {exc}")


def run_stage(
    stage: Stage,
    context: StageContext,
    *,
    registry: Registry,
    plugin_manager: pluggy.PluginManager,
    on_input_change: str = "refuse",
) -> StageResult:
    """The whole lifecycle of one stage; ``stage.run`` is called once, or not at all when this
    very run already finished in its directory. Observers and the run's trackers hear the stage
    through the hooks only (``on_stage_start``, ``on_train_event``, ``on_stage_finish``)."""
    from sec_cybert.host.config import registered_name, unstructure

    config = unstructure(stage, registry)
    kind = registered_name(type(stage), registry) or type(stage).__name__
    settings = _identity_settings(stage, unstructure(stage, registry, omit_defaults=True))
    fingerprint = fingerprint_of(settings, context, third_party_versions(stage, registry))
    out = Path(stage.output_dir(context))
    log.info("stage starting", stage=stage.name, kind=kind, variant=context.variant, init_from=context.init_from)
    inputs = input_digests(stage, context)
    finished = claim_output_dir(out, fingerprint, config, context, inputs, on_input_change)
    if finished is not None:
        log.info("stage already complete; reusing it", stage=stage.name, output_dir=str(out))
        return finished

    def events(event: str, step: int, metrics: Mapping[str, float]) -> None:
        if not is_main_process():
            return
        plugin_manager.hook.on_train_event(
            event=event, stage_name=stage.name, step=step, metrics=metrics, context=context
        )

    context = attrs.evolve(context, output_dir=out, stage_name=stage.name, events=events)
    if is_main_process():
        plugin_manager.hook.on_stage_start(context=context, config=config)
    result = None
    from sec_cybert.stages.guards import StopOnSigterm

    try:
        # SIGTERM while the stage reads, tokenizes, loads or saves: one line, not a silent exit.
        with StopOnSigterm(stage.name):
            outcome = plugin_manager.hook.stage_run(stage=stage, context=context)
        if not isinstance(outcome, StageOutcome):
            raise PluginError(
                f"stage {stage.name!r} ({kind}) returned {type(outcome).__name__} from run(); "
                "return sec_cybert.stages.StageOutcome(metrics=..., report=...)"
            )
        result = StageResult(
            stage=stage.name,
            kind=kind,
            output_dir=out,
            init_from=context.init_from,
            metrics=dict(outcome.metrics),
            config=config,
            report=dict(outcome.report),
            fingerprint=fingerprint,
            produces_variant=bool(stage.produces_variant),
            inputs=inputs,
        )
        if is_main_process():
            result.save()
            _write_card(result, context.seed)
            warn_if_collapsed(stage.name, result.metrics, context)  # while its tracker run is open
        wait_for_everyone()
    finally:
        if is_main_process():
            plugin_manager.hook.on_stage_finish(context=context, result=result)
    scalars = {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in result.metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    log.info("stage complete", stage=result.stage, variant=context.variant, **scalars)
    return result
