"""The built-in ``stage_run``: run the stage. Plugins wrap this to observe or track stages."""

from __future__ import annotations

from sec_cybert.plugins.hookspecs import hookimpl


@hookimpl(trylast=True)
def stage_run(stage, context):
    return stage.run(context)
