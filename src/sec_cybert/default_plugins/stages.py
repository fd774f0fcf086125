"""Built-in stages."""

from __future__ import annotations

from sec_cybert.plugins.hookspecs import hookimpl
from sec_cybert.stages import FineTuneStage, MLMStage


@hookimpl
def register_stages(register):
    register("mlm", MLMStage)
    register("finetune", FineTuneStage)
