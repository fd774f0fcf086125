"""A stage's output directory: resume what was started, reuse what finished, refuse a mix.

A stage records a fingerprint of its resolved config, its input checkpoint and the seed when
it starts (``stage-started.json``) and when it finishes (``stage.json``). Re-running the same
stage into the same directory reuses a finished result, or lets the Trainer resume from its last
checkpoint; a *different* config in that directory is refused, because resuming one run's
optimizer state under another run's settings would silently mix the two.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sec_cybert.errors import ConfigError
from sec_cybert.stages.context import StageContext, StageResult

STARTED_RECORD = "stage-started.json"


def fingerprint_of(config: Any, context: StageContext) -> str:
    payload = json.dumps(
        {"config": config, "init_from": context.init_from, "seed": context.seed}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def prepare_output_dir(out: Path, config: Any, context: StageContext) -> tuple[Path, str, StageResult | None]:
    """Create ``out``; return it, the run's fingerprint, and the finished result if there is one."""
    fingerprint = fingerprint_of(config, context)
    out.mkdir(parents=True, exist_ok=True)
    finished = StageResult.load(out)
    started_path = out / STARTED_RECORD
    recorded = finished.fingerprint if finished else None
    if recorded is None and started_path.is_file():
        recorded = json.loads(started_path.read_text()).get("fingerprint")
    if recorded is not None and recorded != fingerprint:
        raise ConfigError(
            f"{out} holds a run of this stage with a different config, input or seed; "
            "use another output directory, or delete that one to start over"
        )
    if finished is not None:
        return out, fingerprint, finished
    started_path.write_text(
        json.dumps(
            {"fingerprint": fingerprint, "config": config, "init_from": context.init_from},
            indent=2,
            default=str,
        )
        + "\n"
    )
    return out, fingerprint, None
