"""The plan of a whole pipeline: every stage planned, without training anything.

The host's job, not the planning floor's: it materializes the encoder, runs the contamination
check and reads the registry, then asks each stage for its plan (:mod:`sec_cybert.planning.plan`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from sec_cybert.errors import DataError
from sec_cybert.host.config import registered_name
from sec_cybert.planning.plan import (
    Plan,
    PlanContext,
    StagePlan,
    model_config,
    parameter_count,
    step_settings,
    with_static_memory,
    with_step_memory,
)
from sec_cybert.stages.loading import load_tokenizer

if TYPE_CHECKING:
    from sec_cybert.host.pipeline import Pipeline


def plan_pipeline(pipeline: Pipeline, *, world_size: int = 1) -> Plan:
    """Plan every stage of ``pipeline`` without training anything."""
    # Planning an rtx3090 run on a laptop is the point: do not require the GPU here.
    profile = pipeline.hardware_profile(check=False)
    contamination = pipeline.contamination_check()
    try:
        contamination.enforce()
        refused = None
    except DataError as exc:
        refused = str(exc)
    registry = pipeline.registry
    with tempfile.TemporaryDirectory(prefix="sec-cybert-plan-") as scratch:
        base = pipeline.materialize_encoder(Path(scratch), contamination)
        tokenizer = load_tokenizer(base)
        parameters = parameter_count(base)
        config = model_config(base)
        plans = []
        for stage in pipeline.stages:
            planning = PlanContext(
                tokenizer=tokenizer,
                seed=pipeline.seed,
                world_size=world_size,
                profile=profile,
                exclusions=contamination.exclusions.get(stage.name),
                registry=registry,
            )
            planner = getattr(stage, "plan", None)
            plan = planner(planning) if planner else StagePlan(stage=stage.name, notes=("this stage has no plan method",))
            kind = registered_name(type(stage), registry) or type(stage).__name__
            settings = plan.settings or step_settings(getattr(stage, "training", None))
            plan = with_static_memory(attrs.evolve(plan, kind=kind, settings=settings), parameters, profile)
            plans.append(with_step_memory(plan, stage, config, profile))
    return Plan(
        hardware=profile.name,
        world_size=world_size,
        tokens_per_second=profile.tokens_per_second,
        throughput_source=profile.throughput_source,
        stages=tuple(plans),
        contamination=tuple(contamination.summary_lines()),
        refused=refused,
        memory_gib=profile.memory_gib,
    )
