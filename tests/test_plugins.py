"""The plugin system: built-ins through entry points, registration rules, third-party plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import attrs
import pytest

from sec_cybert import hookimpl
from sec_cybert.errors import PluginError, UnknownComponentError
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.plugins.registry import (
    KIND_HOOKS,
    Registry,
    load_entry_point_plugins,
    new_plugin_manager,
    reset_plugin_manager,
)
from sec_cybert.testing import tiny_pipeline_config

BUILTINS = {
    "corpus": {"jsonl-shards", "paragraphs", "edgar-html"},
    "chunker": {"concat", "paragraph", "packed"},
    "masker": {"token", "whole-word"},
    "hardware": {"cpu", "cuda", "rtx3090", "a100", "h100"},
    "stage": {"mlm", "finetune"},
    "encoder": {"tiny-modernbert", "modernbert-base", "modernbert-large"},
}


def test_builtins_are_registered_through_entry_points(plugin_manager):
    registry = Registry.collect(plugin_manager)
    for kind, names in BUILTINS.items():
        assert names <= set(registry.names(kind)), kind
    # Each built-in came from an entry point of this distribution, named builtin-*.
    assert {r.plugin for r in registry} <= {name for name, _ in plugin_manager.list_name_plugin()}
    assert all(r.plugin.startswith("builtin-") for r in registry)
    assert registry.get("masker", "whole-word").plugin == "builtin-maskers"


def test_unknown_component_lists_known_names(plugin_manager):
    registry = Registry.collect(plugin_manager)
    with pytest.raises(UnknownComponentError) as caught:
        registry.get("masker", "spam")
    assert "token" in str(caught.value) and "whole-word" in str(caught.value)
    assert caught.value.known == ["token", "whole-word"]


class _Plugin:
    def __init__(self, name, factory):
        self.name, self.factory = name, factory

    @hookimpl
    def register_maskers(self, register):
        register(self.name, self.factory)


@attrs.frozen
class _NullMasker:
    needs_word_ids = False


def _registry_with(*plugins):
    pm = new_plugin_manager()
    for index, plugin in enumerate(plugins):
        pm.register(plugin, name=f"third-party-{index}")
    return Registry.collect(pm)


def test_duplicate_names_name_both_plugins():
    with pytest.raises(PluginError, match="third-party-0.*third-party-1"):
        _registry_with(_Plugin("same", _NullMasker), _Plugin("same", lambda: None))


@pytest.mark.parametrize("name", ["Upper", "with space", "", "-leading"])
def test_bad_names_are_refused(name):
    with pytest.raises(PluginError, match="names are lower-case"):
        _registry_with(_Plugin(name, _NullMasker))


def test_instances_are_refused():
    with pytest.raises(PluginError, match="not callable"):
        _registry_with(_Plugin("inst", object()))


def test_every_kind_has_a_hook():
    pm = new_plugin_manager()
    for hook in KIND_HOOKS.values():
        assert hasattr(pm.hook, hook)


def test_plugin_that_fails_to_import_is_one_clear_error(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sec_cybert]\nbroken = module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = new_plugin_manager()
    with pytest.raises(PluginError, match=r"plugin 'broken' \(broken-plugin 0\.1\) failed to load"):
        load_entry_point_plugins(pm)
    # The block list keeps a broken plugin out.
    pm = new_plugin_manager()
    load_entry_point_plugins(pm, allowed=[])
    assert pm.get_plugin("broken") is None


THIRD_PARTY_PLUGIN = '''
import attrs
import torch
from sec_cybert import hookimpl


@attrs.frozen
class EveryOtherTokenMasker:
    """Masks every other non-special token: deterministic, so a test can see it was used."""

    needs_word_ids = False

    def mask(self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None):
        positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        chosen = (positions % 2 == 0) & ~special_tokens_mask.bool()
        labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        return torch.where(chosen, torch.full_like(input_ids, mask_token_id), input_ids), labels


@hookimpl
def register_maskers(register):
    register("every-other", EveryOtherTokenMasker)
'''


@pytest.fixture
def installed_third_party_plugin(tmp_path, monkeypatch):
    """Build and pip-install a throwaway plugin package (with an entry point) into a temp site dir."""
    package = tmp_path / "throwaway"
    (package / "throwaway_masker").mkdir(parents=True)
    (package / "throwaway_masker" / "__init__.py").write_text(textwrap.dedent(THIRD_PARTY_PLUGIN))
    (package / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "throwaway-masker"
            version = "0.0.1"

            [project.entry-points.sec_cybert]
            every_other = "throwaway_masker"

            [tool.setuptools]
            packages = ["throwaway_masker"]
            """
        )
    )
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(package)],
        check=True,
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("SEC_CYBERT_PLUGINS", raising=False)
    reset_plugin_manager()
    yield site
    reset_plugin_manager()
    for module in [m for m in sys.modules if m.startswith("throwaway_masker")]:
        del sys.modules[module]


def test_third_party_plugin_masker_is_used_by_name(installed_third_party_plugin, tiny_corpus, tmp_path):
    from sec_cybert.plugins.registry import get_plugin_manager, get_registry

    pm = get_plugin_manager()
    registration = get_registry(pm).get("masker", "every-other")
    assert registration.plugin == "every_other"

    config = tiny_pipeline_config(tiny_corpus, finetune=False)
    config["stages"] = config["stages"][:1]
    config["stages"][0]["masker"] = {"kind": "every-other"}
    run = load_run_config(config, plugin_manager=pm)
    assert type(run.pipeline.stages[0].masker).__name__ == "EveryOtherTokenMasker"
    result = run.pipeline.run(tmp_path / "run")
    stage = json.loads((tmp_path / "run" / "dapt" / "stage.json").read_text())
    assert stage["config"]["masker"] == {"kind": "every-other"}
    assert result.variants[-1].checkpoint.endswith("dapt")


def test_env_var_keeps_third_party_plugins_out(installed_third_party_plugin, monkeypatch):
    from sec_cybert.plugins.registry import get_plugin_manager, get_registry

    monkeypatch.setenv("SEC_CYBERT_PLUGINS", "")
    reset_plugin_manager()
    registry = get_registry(get_plugin_manager())
    assert "every-other" not in registry.names("masker")
    assert "token" in registry.names("masker")
