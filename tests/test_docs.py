"""The docs keep up with the code: every hook is documented with its signature, every config key explained."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from sec_cybert.plugins import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"
HOOKS = [name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "sec_cybert_spec")]


def test_there_are_hooks_to_document():
    assert {"register_maskers", "register_encoders", "stage_run", "on_train_event"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    text = (DOCS / "hooks.md").read_text()
    assert re.search(rf"^#+ .*`?{hook}`?", text, re.MULTILINE), f"no heading for {hook} in docs/hooks.md"
    parameters = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    signature = re.search(rf"def {hook}\((.*)\) ->", text)
    assert signature, f"docs/hooks.md has no `def {hook}(...)` line"
    flat = re.sub(r"\[[^\[\]]*\]", "", re.sub(r"\[[^\[\]]*\]", "", signature.group(1)))  # drop type arguments
    documented = [p.split(":")[0].strip() for p in flat.split(",") if p.strip()]
    assert documented == parameters


def test_the_hook_reference_is_generated_from_the_hookspecs():
    from sec_cybert.plugins.hookdoc import render

    assert (DOCS / "hooks.md").read_text() == render(), "regenerate: python -m sec_cybert.plugins.hookdoc > docs/hooks.md"


def test_configs_doc_covers_every_shipped_config():
    text = (DOCS / "configs.md").read_text()
    for config in ("configs/dapt/modernbert.yaml", "configs/tapt/modernbert.yaml", "configs/finetune/modernbert.yaml", "configs/pipeline/sec-cybert-large.yaml"):
        assert config in text
    assert "e^loss" in text or "e^eval_loss" in text  # the reference's 2^loss is corrected there
