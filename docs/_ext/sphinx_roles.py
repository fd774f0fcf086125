"""A griffe extension for the API page (mkdocs.yml): the Sphinx roles our docstrings use.

The docstrings cross-reference with Sphinx roles (:meth:`Pipeline.run`), which Markdown would
show as literal text. Each role becomes code that links to its target where the site documents
it: an *optional* autoref, which mkdocs-autorefs leaves as plain code, without a warning, when
the target is not on the site (most internal modules are not).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:mod|func|meth|class|attr|data|exc|obj):`(?P<short>~?)(?P<name>[\w.]+)`")


def target(obj: griffe.Object, name: str) -> str:
    """The full path ``name`` means in ``obj``'s scope (Sphinx resolves relative names the same way)."""
    head, _, rest = name.partition(".")
    try:
        path = obj.resolve(head)
    except griffe.NameResolutionError:
        return name
    return f"{path}.{rest}" if rest else path


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return

        def link(match: re.Match[str]) -> str:
            name = match["name"]
            shown = name.rsplit(".", 1)[-1] if match["short"] else name
            return f'<autoref identifier="{target(obj, name)}" optional><code>{shown}</code></autoref>'

        obj.docstring.value = ROLE.sub(link, obj.docstring.value)
