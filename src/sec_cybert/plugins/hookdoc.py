"""Render docs/hooks.md from ``hookspecs.py``: the docstrings are the reference, the page a copy.

    python -m sec_cybert.plugins.hookdoc > docs/hooks.md

A test compares the page with :func:`render`, so the two cannot drift. reStructuredText's
double backticks become single ones, ``:class:`~x.Y``` becomes ```Y```, and a paragraph that
ends in ``::`` is followed by its indented block as a fenced code block.
"""

from __future__ import annotations

import inspect
import re
import textwrap

from sec_cybert.plugins import hookspecs

_ROLE = re.compile(r":(?:class|func|meth|mod|attr):`~?([^`]+)`")


def hooks() -> list[tuple[str, object]]:
    """The hook specifications, in the order ``hookspecs.py`` declares them."""
    found = [
        (name, fn)
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    ]
    return sorted(found, key=lambda item: inspect.getsourcelines(item[1])[1])


def _inline(text: str) -> str:
    text = _ROLE.sub(lambda m: f"``{m.group(1).rsplit('.', 1)[-1] if m.group(0).count('~') else m.group(1)}``", text)
    return text.replace("``", "`")


def markdown(docstring: str) -> str:
    """A docstring as markdown (see the module docstring for what is converted)."""
    lines = inspect.cleandoc(docstring).splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip().endswith("::"):
            out.append(_inline(line.rstrip()[:-2].rstrip() + ":"))
            index += 1
            block: list[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
                block.append(lines[index])
                index += 1
            code = textwrap.dedent("\n".join(block)).strip("\n")
            out += ["", "```python", code, "```", ""]
            continue
        out.append(_inline(line))
        index += 1
    return "\n".join(out).strip() + "\n"


def signature(name: str, fn: object) -> str:
    parameters = ", ".join(
        f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name
        for p in inspect.signature(fn, eval_str=False).parameters.values()
    )
    returns = inspect.signature(fn, eval_str=False).return_annotation
    return f"def {name}({parameters}) -> {returns}"


def _how_called(fn: object) -> str:
    from sec_cybert.plugins.registry import KIND_HOOKS

    options = getattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    if fn.__name__ in KIND_HOOKS.values():
        return "registration: every implementation, each time the registry is collected"
    if options.get("firstresult"):
        return "the first non-`None` result wins; wrappers welcome"
    return "every implementation"


def render() -> str:
    specs = hooks()
    parts = [
        "# Hook reference",
        "",
        "<!-- Generated from src/sec_cybert/plugins/hookspecs.py by `python -m sec_cybert.plugins.hookdoc > docs/hooks.md`;",
        "     edit the docstrings there, not this page. tests/test_docs.py fails when they differ. -->",
        "",
        markdown(hookspecs.__doc__ or ""),
        "| hook | how it is called |",
        "|---|---|",
        *(f"| `{name}` | {_how_called(fn)} |" for name, fn in specs),
        "",
    ]
    for name, fn in specs:
        parts += [f"## {name}", "", "```python", signature(name, fn), "```", "", markdown(fn.__doc__ or "")]
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
