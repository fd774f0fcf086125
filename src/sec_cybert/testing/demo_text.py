"""The demo corpus's templates and how one becomes text: ``[a|b]`` alternatives and ``{slot}``
placeholders filled from ``sec_cybert/data/demo/*.yaml``. Every choice is drawn from the
``random.Random`` handed in, so text is a pure function of the generator's seed."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from random import Random
from typing import Any

import attrs
import yaml

from sec_cybert.core.taxonomy import CATEGORIES, SPECIFICITY_LEVELS
from sec_cybert.errors import DataError

_ALTERNATION = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"\{(\w+)\}")


@attrs.frozen
class Templates:
    fillers: Mapping[str, Any]
    item1c: Mapping[str, Mapping[str, Sequence[str]]]
    filing: Mapping[str, Any]


def _read_yaml(name: str) -> Any:
    resource = resources.files("sec_cybert") / "data" / "demo" / name
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"demo template {name} is missing from the installed package; reinstall sec-cybert"
        ) from None
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def templates() -> Templates:
    item1c = _read_yaml("item1c.yaml")
    missing = [
        f"{category} / {level}"
        for category in CATEGORIES
        for level in SPECIFICITY_LEVELS
        if not item1c.get(category, {}).get(level)
    ]
    if missing:
        raise DataError(f"demo item1c.yaml has no templates for: {', '.join(missing)}")
    return Templates(fillers=_read_yaml("fillers.yaml"), item1c=item1c, filing=_read_yaml("filing.yaml"))


# -- slots: the values a template's {name} placeholders take ----------------------------------


def money(value: float) -> str:
    return f"{value:,.1f}"


def long_date(day: dt.date) -> str:
    return f"{calendar.month_name[day.month]} {day.day}, {day.year}"


class Slots:
    """Lazily drawn placeholder values, fixed once drawn so repeated slots agree within a text.

    ``fixed`` holds values decided by the filing (company, fiscal year, financials); everything
    else is drawn from fillers.yaml on first use.
    """

    def __init__(self, rng: Random, fixed: Mapping[str, str]) -> None:
        self._rng = rng
        self._values: dict[str, str] = dict(fixed)
        fillers = templates().fillers
        self._lists: Mapping[str, Sequence[str]] = fillers["lists"]
        self._numbers: Mapping[str, Sequence[Any]] = fillers["numbers"]
        self._words: Mapping[int, str] = fillers["number_words"]

    def __getitem__(self, name: str) -> str:
        if name not in self._values:
            self._values[name] = self._draw(name)
        return self._values[name]

    def _draw(self, name: str) -> str:
        rng = self._rng
        if name in self._lists:
            return rng.choice(self._lists[name])
        if name.endswith("2") and name[:-1] in self._lists:
            first = self[name[:-1]]
            return rng.choice([v for v in self._lists[name[:-1]] if v != first])
        if name in self._numbers:
            return self._number(name)
        derive = _DERIVED.get(name)
        if derive is None:
            raise DataError(f"demo template uses unknown slot {{{name}}}")
        return derive(self, rng)

    def _number(self, name: str) -> str:
        low, high, *fmt = self._numbers[name]
        value = self._rng.randint(low, high)
        if fmt == ["comma"]:
            return f"{value:,}"
        if fmt == ["word"]:
            return self._words.get(value, str(value))
        return str(value)

    def fiscal_year(self) -> int:
        return int(self["fy"])


def _date_in_year(slots: Slots, rng: Random) -> dt.date:
    year = slots.fiscal_year()
    return dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 330))


def _later_date(slots: Slots, rng: Random) -> str:
    start = dt.datetime.strptime(slots["date"], "%B %d, %Y").date()
    return long_date(start + dt.timedelta(days=rng.randint(2, 30)))


_DERIVED: dict[str, Callable[[Slots, Random], str]] = {
    "prior_fy": lambda s, r: str(s.fiscal_year() - 1),
    "next_fy": lambda s, r: str(s.fiscal_year() + 1),
    "date": lambda s, r: long_date(_date_in_year(s, r)),
    "later_date": _later_date,
    "month_year": lambda s, r: f"{calendar.month_name[r.randint(1, 12)]} {s.fiscal_year()}",
    "year_established": lambda s, r: str(s.fiscal_year() - r.randint(2, 12)),
    "join_year": lambda s, r: str(s.fiscal_year() - r.randint(1, 9)),
    "amount_m": lambda s, r: money(r.uniform(1.2, 35.0)),
    "cost_m": lambda s, r: money(r.uniform(0.4, 12.5)),
    "pct_low2": lambda s, r: str(int(s["pct_low"]) + r.randint(2, 8)),
    "pct_budget_prior": lambda s, r: str(int(s["pct_budget"]) - r.randint(1, 3)),
}


def render(template: str, rng: Random, slots: Slots) -> str:
    text = _ALTERNATION.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    text = _SLOT.sub(lambda m: slots[m.group(1)], text)
    # Empty alternatives leave doubled spaces or a space before punctuation.
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(r" ([,.;:])", r"\1", text).strip()


def word_count(text: str) -> int:
    return len(text.split())
