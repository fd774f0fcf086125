"""What a stage receives (StageContext) and what it hands on (StageResult)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

STAGE_RECORD = "stage.json"


@attrs.frozen
class StageContext:
    """Everything a stage needs from the pipeline; stages get no other global state.

    ``init_from`` is a ``from_pretrained`` reference: the previous stage's output directory,
    or the base encoder (a local directory or a hub id).
    """

    run_dir: Path
    init_from: str
    hardware: Any
    seed: int
    plugin_manager: Any
    #: The pretraining variant being fine-tuned ("base", "+DAPT", "+DAPT+TAPT") and its
    #: directory-safe tag ("base", "dapt", "dapt-tapt", plus "-seed7" when several seeds run).
    variant: str = "base"
    tag: str = "base"
    tracking: str = "none"
    #: What the contamination check removes from this stage's corpus (MLM stages), and this
    #: stage's share of the check's counts, for its record.
    exclusions: Any = None
    contamination: Mapping[str, Any] | None = None


@attrs.frozen
class StageResult:
    """A finished stage: where its checkpoint is and what it measured. Written as ``stage.json``."""

    stage: str
    kind: str
    output_dir: Path
    init_from: str
    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    config: Mapping[str, Any] = attrs.field(factory=dict)
    report: Mapping[str, Any] = attrs.field(factory=dict)
    fingerprint: str = ""

    def save(self) -> None:
        record = attrs.asdict(self, value_serializer=_jsonable)
        (self.output_dir / STAGE_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, output_dir: Path) -> StageResult | None:
        path = Path(output_dir) / STAGE_RECORD
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        record["output_dir"] = Path(record["output_dir"])
        return cls(**record)


def _jsonable(_inst: Any, _field: Any, value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return value
