"""What a stage receives (StageContext), what it returns (StageOutcome), and what the host
records of it (StageResult, written as ``stage.json``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from sec_cybert.errors import DataError

if TYPE_CHECKING:
    import pluggy

STAGE_RECORD = "stage.json"
#: ``attrs.field(metadata={FINGERPRINT: False})`` marks a stage setting that changes how the stage
#: works (a cache), not what it computes: the host leaves it out of the stage's fingerprint, so
#: changing it keeps a finished or half-finished run the same run.
FINGERPRINT = "fingerprint"

EventSink = Callable[[str, int, Mapping[str, float]], None]


def _no_events(event: str, step: int, metrics: Mapping[str, float]) -> None:
    return None


@attrs.frozen
class StageContext:
    """Everything a stage needs from the pipeline; stages get no other global state.

    ``init_from`` is a ``from_pretrained`` reference: the previous variant's directory, or the
    base encoder (a local directory or a hub id). ``output_dir`` is the directory the host
    prepared for the stage (``None`` only while the host asks ``stage.output_dir(context)``).
    """

    run_dir: Path
    init_from: str
    #: The resolved hardware profile: a ``sec_cybert.core.components.HardwareProfile`` (typed
    #: loosely: that module imports this one for the Stage Protocol's signatures).
    hardware: Any
    seed: int
    #: The plugin manager the pipeline runs with, for a stage that calls hooks of its own.
    plugin_manager: pluggy.PluginManager | None = attrs.field(default=None, eq=False, repr=False)
    #: The components registered on it, as the run collected them once
    #: (a ``sec_cybert.plugins.Registry``; ``None`` in a context built outside a pipeline).
    registry: Any = attrs.field(default=None, eq=False, repr=False)
    #: The pretraining variant being fine-tuned ("base", "+DAPT", "+DAPT+TAPT") and its
    #: directory-safe tag ("base", "dapt", "dapt-tapt", plus "-seed7" when several seeds run).
    variant: str = "base"
    tag: str = "base"
    stage_name: str = ""
    output_dir: Path | None = None
    #: What the contamination check removes from this stage's corpus (stages with pretraining
    #: documents), and this stage's share of the check's counts, for its record.
    exclusions: Any = None
    contamination: Mapping[str, Any] | None = None
    events: EventSink = attrs.field(default=_no_events, eq=False, repr=False)

    def emit(self, event: str, step: int, metrics: Mapping[str, float]) -> None:
        """Report a training event (``log``, ``evaluate``, ``checkpoint``) to observers and trackers."""
        self.events(event, step, metrics)


@attrs.frozen
class StageOutcome:
    """What ``Stage.run`` returns: its metrics (numbers a table or a tracker shows) and its
    report (what it read, kept, skipped and ran with). The host writes both into ``stage.json``."""

    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    report: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class StageResult:
    """A finished stage: where its output is and what it measured. Written as ``stage.json``.

    ``kind`` is the stage's registered name (``mlm``, ``finetune``, a plugin's); whether it made a
    new encoder variant is ``produces_variant``.
    """

    stage: str
    kind: str
    output_dir: Path
    init_from: str
    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    config: Mapping[str, Any] = attrs.field(factory=dict)
    report: Mapping[str, Any] = attrs.field(factory=dict)
    fingerprint: str = ""
    produces_variant: bool = False
    #: Content digests of what the stage read (input weights, data files), to notice later changes.
    inputs: Mapping[str, Any] | None = None

    def save(self) -> None:
        from sec_cybert.core.files import write_json_atomic

        write_json_atomic(self.output_dir / STAGE_RECORD, attrs.asdict(self, value_serializer=_jsonable), sort_keys=True)

    @classmethod
    def load(cls, output_dir: Path) -> StageResult | None:
        from sec_cybert.core.files import read_json_record

        path = Path(output_dir) / STAGE_RECORD
        if not path.is_file():
            return None
        record = read_json_record(path, "a finished stage's record")
        try:
            record["output_dir"] = Path(record["output_dir"])
            # Records written before stages declared what they produce: only MLM stages did.
            record.setdefault("produces_variant", record.get("kind") == "mlm")
            return cls(**record)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path} is not a readable stage record ({type(exc).__name__}: {exc}); "
                "delete it to run the stage again"
            ) from None


def _jsonable(_inst: Any, _field: Any, value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return value
