"""Import paths that moved when the modules were grouped into floors (CHANGELOG.md, 0.2.0).

Each old path still imports, for one release, and warns with a DeprecationWarning naming the new
one. One table instead of a re-export file per old path keeps the package root showing the floors.
An old path that maps to one module *is* that module (setting an attribute through it changes what
the library uses); one whose names were split across modules gets a module holding them all.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

#: old path -> the module (or modules, in order) that now hold its names.
MOVED: dict[str, tuple[str, ...]] = {
    "sec_cybert.components": ("sec_cybert.core.components",),
    "sec_cybert.stages.context": ("sec_cybert.core.context",),
    "sec_cybert.hardware": ("sec_cybert.core.hardware",),
    "sec_cybert.taxonomy": ("sec_cybert.core.taxonomy",),
    "sec_cybert.encoders": ("sec_cybert.core.encoders",),
    "sec_cybert.log_setup": ("sec_cybert.core.log_setup",),
    "sec_cybert.hookspecs": ("sec_cybert.plugins.hookspecs",),
    "sec_cybert.hookdoc": ("sec_cybert.plugins.hookdoc",),
    "sec_cybert.chunking": ("sec_cybert.datapath.chunking",),
    "sec_cybert.collator": ("sec_cybert.datapath.collator",),
    "sec_cybert.masking": ("sec_cybert.datapath.masking",),
    "sec_cybert.wordsplit": ("sec_cybert.datapath.wordsplit",),
    "sec_cybert.document_attention": ("sec_cybert.datapath.document_attention",),
    "sec_cybert.plan": ("sec_cybert.planning.plan", "sec_cybert.host.planner"),
    "sec_cybert.memory": ("sec_cybert.planning.memory", "sec_cybert.planning.fitting"),
    "sec_cybert.flops": ("sec_cybert.planning.flops",),
    "sec_cybert.significance": ("sec_cybert.results.significance",),
    "sec_cybert.pipeline": ("sec_cybert.host.pipeline",),
    "sec_cybert.config": ("sec_cybert.host.config",),
    "sec_cybert.demo": ("sec_cybert.app.demo",),
    "sec_cybert.demo_data": ("sec_cybert.testing.demo_data",),
    # Moved in an earlier release, kept as files until the floors replaced them with this table.
    "sec_cybert.demo_corpus": ("sec_cybert.testing.demo_corpus",),
    "sec_cybert.export": ("sec_cybert.sharing.export",),
    "sec_cybert.report": ("sec_cybert.sharing.report",),
    "sec_cybert.modelcard": ("sec_cybert.sharing.modelcard", "sec_cybert.sharing.hub"),
}


class _Alias(importlib.abc.Loader):
    def __init__(self, old: str, new: tuple[str, ...]) -> None:
        self.old, self.new = old, new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(
            f"{self.old} moved to {' and '.join(self.new)}; import from there "
            "(the old path goes in the next release, see CHANGELOG.md)",
            DeprecationWarning,
            stacklevel=2,
        )
        modules = [importlib.import_module(name) for name in self.new]
        if len(modules) == 1:
            return modules[0]
        merged = types.ModuleType(self.old, modules[0].__doc__)
        for module in modules:
            merged.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return merged

    def exec_module(self, module: types.ModuleType) -> None:
        """The module is already the new one: nothing left to run."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(fullname, new))


def install() -> None:
    """Answer the old paths after the real ones: a module that exists is always found first."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
