"""Lineage: which checkpoint fed which stage, and the variants a chain of stages made.

On the ground floor because both the host (which records it after every stage) and the model
cards (which name the variants a fine-tune started from) read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from sec_cybert.core.context import StageResult
from sec_cybert.core.distributed import is_main_process
from sec_cybert.core.files import read_json_record, write_json_atomic
from sec_cybert.core.run_paths import recorded_run_dirs, run_relative

LINEAGE_FILE = "lineage.json"


@attrs.frozen
class Variant:
    """A pretrained encoder to fine-tune: its row name, directory tag and checkpoint."""

    name: str
    tag: str
    checkpoint: str
    mlm_result: StageResult | None = None

    def extended_by(self, stage_name: str, result: StageResult) -> Variant:
        """The variant a variant-producing stage makes of this one: base -> +DAPT -> +DAPT+TAPT."""
        suffix = stage_name.upper()
        name = f"+{suffix}" if self.name == "base" else f"{self.name}+{suffix}"
        tag = stage_name if self.tag == "base" else f"{self.tag}-{stage_name}"
        return Variant(name=name, tag=tag, checkpoint=str(result.output_dir), mlm_result=result)


def variant_chain(checkpoint: str) -> list[Variant]:
    """The variants that led to ``checkpoint``, oldest first, read from the stages' records.

    So a pipeline that starts from a TAPT output (a per-stage config) still names its variant
    ``+DAPT+TAPT`` and can ablate against the earlier ones.
    """
    directory = Path(checkpoint)
    record = StageResult.load(directory) if directory.is_dir() else None
    if record is None or not record.produces_variant:
        return [Variant(name="base", tag="base", checkpoint=checkpoint)]
    # The directory named is the one read: the record's output_dir is where it was written, and a
    # copied, edited or moved checkpoint must not lead back there.
    record = attrs.evolve(record, output_dir=directory)
    chain = variant_chain(record.init_from)
    return [*chain, chain[-1].extended_by(record.stage, record)]



@attrs.define
class Lineage:
    """Which checkpoint fed which stage, with each stage's resolved config; saved after every stage."""

    path: Path
    header: dict[str, Any]
    stages: list[dict[str, Any]] = attrs.field(factory=list)
    hardware: str | None = None
    base: str | None = None
    contamination: dict[str, Any] | None = None

    @classmethod
    def start(cls, run_dir: Path, header: dict[str, Any]) -> Lineage:
        """The run's lineage under ``header`` (what the host says about the run), keeping the
        stages an earlier command recorded into the same directory."""
        path = run_dir / LINEAGE_FILE
        # Per-stage commands (dapt, then tapt, then finetune) share one lineage file.
        earlier = read_json_record(path, "the run's lineage").get("stages", []) if path.is_file() else []
        # One written before paths were stored relative to the run directory (maybe elsewhere): relative now too.
        roots = [run_dir, *recorded_run_dirs([str(s["output"]) for s in earlier])]
        earlier = [{**s, "input": run_relative(s["input"], *roots), "output": run_relative(s["output"], *roots)} for s in earlier]
        return cls(path=path, header=header, stages=earlier)

    def record(self, result: StageResult, *, variant: str) -> None:
        entry = {
            "stage": result.stage,
            "kind": result.kind,
            "variant": variant,
            # Relative to the run directory when inside it: a moved or shared run still names its parts.
            "input": run_relative(result.init_from, self.path.parent),
            "output": run_relative(result.output_dir, self.path.parent),
            "config": result.config,
            "metrics": result.metrics,
            "fingerprint": result.fingerprint,
        }
        self.stages = [s for s in self.stages if s["output"] != entry["output"]] + [entry]
        self.save()

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.header,
            "hardware": self.hardware,
            "base_checkpoint": run_relative(self.base, self.path.parent),
            "contamination": self.contamination,
            "stages": self.stages,
        }

    def save(self) -> None:
        if not is_main_process():
            return
        write_json_atomic(self.path, self.as_dict())

