"""What differs between two resolved configs, one short line per key, for refusals that must say
why (a stage directory that holds another run)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

#: Longest value shown; a path or a label list is cut with "…".
SHOWN_CHARS = 40
UNSET = "(not set)"


def _leaves(data: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, key_path)
        else:
            yield key_path, value


def shown(value: Any) -> str:
    """``value`` as a config writes it, cut to :data:`SHOWN_CHARS`."""
    text = UNSET if value is _MISSING else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


_MISSING = object()


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key.path: old -> new`` for every setting that differs, in the new config's order."""
    before, after = dict(_leaves(old)), dict(_leaves(new))
    keys = [*after, *(key for key in before if key not in after)]
    return [
        f"{key}: {shown(before.get(key, _MISSING))} -> {shown(after.get(key, _MISSING))}"
        for key in keys
        if before.get(key, _MISSING) != after.get(key, _MISSING)
    ]


def summary(lines: list[str], most: int = 5) -> str:
    """The first ``most`` of ``lines`` joined with "; ", and how many more there are."""
    more = f"; and {len(lines) - most} more" if len(lines) > most else ""
    return "; ".join(lines[:most]) + more
