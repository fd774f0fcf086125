"""A small synthetic corpus, written from this project's own templates, for ``sec-cybert demo``.

It produces three things the pipeline consumes:

* filing-like 10-K documents (JSONL shards) for domain-adaptive pretraining,
* the unlabeled Item 1C paragraphs of those filings for task-adaptive pretraining,
* labeled paragraphs (category x specificity, see :mod:`sec_cybert.taxonomy`) split into
  train / eval / holdout.

Nothing here is real: companies, people, firms and numbers are invented, and the prose comes from
``sec_cybert/data/demo/*.yaml``. The corpus exists to smoke-test the pipeline end to end in
minutes; it supports no research conclusion. Output is a pure function of ``seed`` and ``size``:
every random choice is drawn from ``random.Random`` instances seeded from them, so two writes
produce the same bytes.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from random import Random
from typing import Any

import attrs
import yaml

from sec_cybert.corpus.dedup import NearDuplicateIndex
from sec_cybert.errors import DataError
from sec_cybert.taxonomy import CATEGORIES, SPECIFICITY_LEVELS

__all__ = ["DemoCorpus", "DemoSize", "write_demo_corpus", "PARAGRAPH_WORDS", "FILING_DATE_RANGE"]

PARAGRAPH_WORDS: tuple[int, int] = (30, 150)
FILING_DATE_RANGE: tuple[dt.date, dt.date] = (dt.date(2023, 1, 1), dt.date(2025, 12, 31))
SPLITS: tuple[str, ...] = ("train", "eval", "holdout")

_FILINGS_PER_COMPANY = 3
# Filing lag after fiscal year end; the SEC deadline is 60-90 days depending on filer status.
_FILING_LAG_DAYS = (45, 85)
# Canonical Item 1C order: process-and-strategy disclosures first, governance last, as filers do.
_ITEM1C_PLAN: tuple[str, ...] = (
    "None/Other",
    "Risk Management Process",
    "Risk Management Process",
    "Third-Party Risk",
    "Incident Disclosure",
    "Strategy Integration",
    "Board Governance",
    "Board Governance",
    "Management Role",
    "Management Role",
)
_GOVERNANCE = frozenset({"Board Governance", "Management Role"})
_MAX_ATTEMPTS = 200
_LABELED_ISSUERS = 60
# Chance, per own sentence beyond the first, of borrowing one off-topic sentence; without it a bag of words
# separates the categories perfectly and the demo's fine-tuning has nothing to learn.
_BORROW_PROBABILITY = 0.5

_ALTERNATION = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"\{(\w+)\}")


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen
class DemoSize:
    """How much to generate. The defaults fit ``sec-cybert demo``'s 5-minute CPU budget.

    Document lengths are a target: each filing aims at a word count drawn from
    ``[dapt_min_words, dapt_max_words]`` and stays inside it as long as its mandatory sections
    (about 1,000-1,700 words with ten Item 1C paragraphs) fit.
    """

    dapt_documents: int = attrs.field(default=60, validator=[attrs.validators.instance_of(int), _positive])
    dapt_min_words: int = attrs.field(default=1500, validator=[attrs.validators.instance_of(int), _positive])
    dapt_max_words: int = attrs.field(default=4000, validator=[attrs.validators.instance_of(int), _positive])
    documents_per_shard: int = attrs.field(
        default=20, validator=[attrs.validators.instance_of(int), _positive]
    )
    tapt_paragraphs: int = attrs.field(default=600, validator=[attrs.validators.instance_of(int), _positive])
    train_per_cell: int = attrs.field(default=20, validator=[attrs.validators.instance_of(int), _positive])
    eval_per_cell: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), _positive])
    holdout_per_cell: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), _positive])

    @dapt_max_words.validator
    def _max_above_min(self, attribute: attrs.Attribute, value: int) -> None:
        # A margin lets the filler paragraphs (up to ~150 words) land inside the range.
        if value < self.dapt_min_words + 300:
            raise ValueError(
                f"dapt_max_words ({value}) must be at least dapt_min_words + 300 "
                f"({self.dapt_min_words + 300})"
            )

    def per_cell(self, split: str) -> int:
        return {"train": self.train_per_cell, "eval": self.eval_per_cell, "holdout": self.holdout_per_cell}[
            split
        ]


def _existing_path(instance: Any, attribute: attrs.Attribute, value: Path) -> None:
    if not value.exists():
        raise ValueError(f"{attribute.name}: {value} does not exist")


@attrs.frozen
class DemoCorpus:
    """Where a written demo corpus lives, and how many records each part holds."""

    root: Path = attrs.field(validator=_existing_path)
    dapt_dir: Path = attrs.field(validator=_existing_path)
    paragraphs_file: Path = attrs.field(validator=_existing_path)
    train_file: Path = attrs.field(validator=_existing_path)
    eval_file: Path = attrs.field(validator=_existing_path)
    holdout_file: Path = attrs.field(validator=_existing_path)
    n_documents: int = attrs.field(validator=_positive)
    n_paragraphs: int = attrs.field(validator=_positive)
    n_train: int = attrs.field(validator=_positive)
    n_eval: int = attrs.field(validator=_positive)
    n_holdout: int = attrs.field(validator=_positive)

    @property
    def dapt_shards(self) -> list[Path]:
        return sorted(self.dapt_dir.glob("shard-*.jsonl"))

    @property
    def labeled_files(self) -> dict[str, Path]:
        return {"train": self.train_file, "eval": self.eval_file, "holdout": self.holdout_file}

    def as_dict(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in attrs.asdict(self).items()}


# --------------------------------------------------------------------------------------------
# Templates


@attrs.frozen
class _Templates:
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
def _templates() -> _Templates:
    item1c = _read_yaml("item1c.yaml")
    missing = [
        f"{category} / {level}"
        for category in CATEGORIES
        for level in SPECIFICITY_LEVELS
        if not item1c.get(category, {}).get(level)
    ]
    if missing:
        raise DataError(f"demo item1c.yaml has no templates for: {', '.join(missing)}")
    return _Templates(fillers=_read_yaml("fillers.yaml"), item1c=item1c, filing=_read_yaml("filing.yaml"))


# --------------------------------------------------------------------------------------------
# Slots: the values a template's {name} placeholders take


def _money(value: float) -> str:
    return f"{value:,.1f}"


def _long_date(day: dt.date) -> str:
    return f"{calendar.month_name[day.month]} {day.day}, {day.year}"


class _Slots:
    """Lazily drawn placeholder values, fixed once drawn so repeated slots agree within a text.

    ``fixed`` holds values decided by the filing (company, fiscal year, financials); everything
    else is drawn from fillers.yaml on first use.
    """

    def __init__(self, rng: Random, fixed: Mapping[str, str]) -> None:
        self._rng = rng
        self._values: dict[str, str] = dict(fixed)
        fillers = _templates().fillers
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


def _date_in_year(slots: _Slots, rng: Random) -> dt.date:
    year = slots.fiscal_year()
    return dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 330))


def _later_date(slots: _Slots, rng: Random) -> str:
    start = dt.datetime.strptime(slots["date"], "%B %d, %Y").date()
    return _long_date(start + dt.timedelta(days=rng.randint(2, 30)))


_DERIVED: dict[str, Callable[[_Slots, Random], str]] = {
    "prior_fy": lambda s, r: str(s.fiscal_year() - 1),
    "next_fy": lambda s, r: str(s.fiscal_year() + 1),
    "date": lambda s, r: _long_date(_date_in_year(s, r)),
    "later_date": _later_date,
    "month_year": lambda s, r: f"{calendar.month_name[r.randint(1, 12)]} {s.fiscal_year()}",
    "year_established": lambda s, r: str(s.fiscal_year() - r.randint(2, 12)),
    "join_year": lambda s, r: str(s.fiscal_year() - r.randint(1, 9)),
    "amount_m": lambda s, r: _money(r.uniform(1.2, 35.0)),
    "cost_m": lambda s, r: _money(r.uniform(0.4, 12.5)),
    "pct_low2": lambda s, r: str(int(s["pct_low"]) + r.randint(2, 8)),
    "pct_budget_prior": lambda s, r: str(int(s["pct_budget"]) - r.randint(1, 3)),
}


def _render(template: str, rng: Random, slots: _Slots) -> str:
    text = _ALTERNATION.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    text = _SLOT.sub(lambda m: slots[m.group(1)], text)
    # Empty alternatives leave doubled spaces or a space before punctuation.
    text = re.sub(r"[ \t]{2,}", " ", text)
    return re.sub(r" ([,.;:])", r"\1", text).strip()


def _word_count(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------------------------
# Companies and filings


@attrs.frozen
class _Filing:
    """One fictional 10-K: its identity (JSON metadata) and the values its templates share."""

    metadata: Mapping[str, Any]
    context: Mapping[str, str]


def _fiscal_year_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _filing_years(month: int) -> list[int]:
    """Fiscal years whose filings, whatever the lag, are dated inside FILING_DATE_RANGE."""
    first, last = FILING_DATE_RANGE
    return [
        year
        for year in range(first.year - 1, last.year + 1)
        if _fiscal_year_end(year, month) + dt.timedelta(days=_FILING_LAG_DAYS[0]) >= first
        and _fiscal_year_end(year, month) + dt.timedelta(days=_FILING_LAG_DAYS[1]) <= last
    ]


def _company(rng: Random, index: int, used_names: set[str], used_ciks: set[str]) -> dict[str, str]:
    fillers = _templates().fillers
    names = fillers["company_names"]
    sector_key = rng.choice(sorted(fillers["sectors"]))
    sector = fillers["sectors"][sector_key]
    stems = names["stems"]
    stem = stems[index % len(stems)]
    for attempt in range(_MAX_ATTEMPTS):
        short = f"{stem} {rng.choice(sector['name_nouns'])}"
        name = short + rng.choice(names["suffixes"])
        if attempt > 20:  # more companies than stem x noun combinations: disambiguate
            short, name = f"{short} {attempt}", f"{name} {attempt}"
        if name not in used_names:
            break
    used_names.add(name)
    cik = f"{rng.randint(1_100_000, 2_099_999):010d}"
    while cik in used_ciks:
        cik = f"{rng.randint(1_100_000, 2_099_999):010d}"
    used_ciks.add(cik)
    city, state = rng.choice(fillers["cities"])
    letters = "".join(ch for ch in stem.upper() if ch.isalpha())
    ticker = (
        letters[:3] + sector["name_nouns"][0][0] if index < len(stems) else letters[:2] + f"{index:02d}"[-2:]
    )
    context = {
        "company": name,
        "company_short": short,
        "company_upper": name.upper(),
        "cik": cik,
        "ticker": ticker,
        "exchange": rng.choice(fillers["exchanges"]),
        "hq_city": city,
        "hq_state": state,
        "hq_street": f"{rng.randint(100, 9800)} {rng.choice(fillers['streets'])}",
        "incorporation_state": rng.choice(fillers["states"]),
        "irs_no": f"{rng.randint(10, 99)}-{rng.randint(1_000_000, 9_999_999)}",
        "file_no": f"001-{rng.randint(10_000, 42_999)}",
        "founded_year": str(rng.randint(1890, 2012)),
        "fye_month": str(rng.choice(fillers["fiscal_year_end_months"])),
        "style": str(rng.choice((0, 1, 1, 2, 2, 3))),  # how specific this filer tends to be
        "n_employees": f"{rng.randint(800, 48_000):,}",
        "n_countries": str(rng.randint(2, 40)),
        "shares_m": str(rng.randint(20, 900)),
    }
    context |= {key: value for key, value in sector.items() if isinstance(value, str)}
    context["sector_noun"] = sector["a_sector_noun"].split(" ", 1)[1]
    for slot, pool in (("product", "products"), ("segment", "segments"), ("driver", "drivers")):
        first, second = rng.sample(sector[pool], 2)
        context[f"{slot}_1"], context[f"{slot}_2"] = first, second
    return context


def _financials(rng: Random, shares_m: int) -> dict[str, str]:
    revenue = rng.uniform(250, 24_000)
    growth = rng.uniform(-6, 18)
    gross_margin = rng.uniform(22, 68)
    opex = revenue * rng.uniform(0.10, gross_margin / 100 - 0.03)
    operating_income = revenue * gross_margin / 100 - opex
    net_income = operating_income * rng.uniform(0.6, 0.8)
    debt = revenue * rng.uniform(0.1, 0.8)
    market_value = shares_m * rng.uniform(8, 160)
    return {
        "revenue_m": _money(revenue),
        "prior_revenue_m": _money(revenue / (1 + growth / 100)),
        "direction": "an increase" if growth >= 0 else "a decrease",
        "growth_pct": f"{abs(growth):.1f}",
        "gross_margin_pct": f"{gross_margin:.1f}",
        "prior_gross_margin_pct": f"{gross_margin + rng.uniform(-3, 3):.1f}",
        "opex_m": _money(opex),
        "operating_income_m": _money(operating_income),
        "net_income_m": _money(net_income),
        "eps": f"{net_income / shares_m:.2f}",
        "cash_m": _money(revenue * rng.uniform(0.03, 0.2)),
        "debt_m": _money(debt),
        "capex_m": _money(revenue * rng.uniform(0.02, 0.08)),
        "buyback_m": _money(net_income * rng.uniform(0.05, 0.5)),
        "operating_cash_m": _money(net_income * rng.uniform(1.1, 1.6)),
        "tax_rate": f"{rng.uniform(19, 27):.1f}",
        "market_value_m": _money(market_value),
        "filer_status": "Large accelerated filer" if market_value >= 700 else "Accelerated filer",
        "rate_sensitivity_m": _money(debt * 0.01 * rng.uniform(0.3, 1.0)),
        "segment_share": str(rng.randint(40, 75)),
        "sq_ft": f"{rng.randint(40, 650) * 1000:,}",
        "n_facilities": str(rng.randint(6, 240)),
    }


def _filings(rng: Random, count: int) -> list[_Filing]:
    filings: list[_Filing] = []
    used_names: set[str] = set()
    used_ciks: set[str] = set()
    used_accessions: set[str] = set()
    for index in range(math.ceil(count / _FILINGS_PER_COMPANY)):
        company = _company(rng, index, used_names, used_ciks)
        month = int(company["fye_month"])
        years = _filing_years(month)
        start = rng.randint(0, max(0, len(years) - _FILINGS_PER_COMPANY))
        for year in years[start : start + _FILINGS_PER_COMPANY]:
            if len(filings) == count:
                break
            fye = _fiscal_year_end(year, month)
            filed = fye + dt.timedelta(days=rng.randint(*_FILING_LAG_DAYS))
            accession = f"{company['cik']}-{filed.year % 100:02d}-{rng.randint(1, 99_999):06d}"
            while accession in used_accessions:
                accession = f"{company['cik']}-{filed.year % 100:02d}-{rng.randint(1, 99_999):06d}"
            used_accessions.add(accession)
            metadata = {
                "cik": company["cik"],
                "company": company["company"],
                "form": "10-K",
                "fiscal_year": year,
                "filing_date": filed.isoformat(),
                "accession": accession,
            }
            context = company | _financials(rng, int(company["shares_m"]))
            context |= {"fy": str(year), "fye_text": _long_date(fye), "filing_date_text": _long_date(filed)}
            filings.append(_Filing(metadata=metadata, context=context))
    return filings


# --------------------------------------------------------------------------------------------
# Item 1C paragraphs


def _paragraph(rng: Random, slots: _Slots, category: str, level: int, avoid: set[str] | None = None) -> str:
    """One paragraph of ``category`` whose most specific sentence is at ``level``.

    One sentence comes from the paragraph's own cell; the rest from the same category at or below
    that level, which keeps specificity a matter of the *most* specific fact present. Sometimes one
    sentence is borrowed from another category (never above ``level``), as real paragraphs drift
    between topics; the paragraph's own category always keeps the majority of its sentences.
    """
    item1c = _templates().item1c
    own = list(item1c[category][SPECIFICITY_LEVELS[level]])
    pool = _up_to(item1c[category], level)
    avoid = set() if avoid is None else avoid
    for _ in range(_MAX_ATTEMPTS):
        fresh_own = [t for t in own if t not in avoid] or own
        anchor = rng.choice(fresh_own)
        others = [t for t in pool if t != anchor and t not in avoid] or [t for t in pool if t != anchor]
        chosen = rng.sample(others, min(len(others), rng.choice((1, 2, 2, 3))))
        chosen.insert(rng.randint(0, len(chosen)), anchor)
        # Borrow fewer sentences than the paragraph has of its own, so its category stays the majority.
        borrowed = sum(rng.random() < _BORROW_PROBABILITY for _ in range(len(chosen) - 1))
        for donor in rng.sample([c for c in CATEGORIES if c != category], borrowed):
            chosen.insert(rng.randint(0, len(chosen)), rng.choice(_up_to(item1c[donor], level)))
        text = " ".join(_render(template, rng, slots) for template in chosen)
        if PARAGRAPH_WORDS[0] <= _word_count(text) <= PARAGRAPH_WORDS[1]:
            avoid.update(chosen)
            return text
    raise DataError(f"demo templates cannot make a {PARAGRAPH_WORDS}-word paragraph for {category} / {level}")


def _up_to(cells: Mapping[str, Sequence[str]], level: int) -> list[str]:
    return [t for lower in SPECIFICITY_LEVELS[: level + 1] for t in cells[lower]]


def _item1c_plan(rng: Random, count: int) -> list[str]:
    if count <= len(_ITEM1C_PLAN):
        return [_ITEM1C_PLAN[i] for i in sorted(rng.sample(range(len(_ITEM1C_PLAN)), count))]
    extra = [rng.choice(_ITEM1C_PLAN) for _ in range(count - len(_ITEM1C_PLAN))]
    order = {category: i for i, category in enumerate(_ITEM1C_PLAN)}
    return sorted([*_ITEM1C_PLAN, *extra], key=order.__getitem__)


def _item1c_sections(
    rng: Random, filings: Sequence[_Filing], total: int, seen: NearDuplicateIndex
) -> list[list[tuple[str, str]]]:
    """For each filing, its Item 1C paragraphs as (category, text); ``total`` paragraphs overall."""
    counts = [total // len(filings) + (1 if i < total % len(filings) else 0) for i in range(len(filings))]
    sections: list[list[tuple[str, str]]] = []
    for filing, count in zip(filings, counts, strict=True):
        slots = _Slots(rng, filing.context)
        style = int(filing.context["style"])
        avoid: set[str] = set()
        section = []
        for category in _item1c_plan(rng, max(count, 1)):
            level = min(3, max(0, style + rng.choice((-1, 0, 0, 1))))
            text = _unique(functools.partial(_paragraph, rng, slots, category, level, avoid), seen)
            section.append((category, text))
        sections.append(section)
    return sections


def _unique(make: Callable[[], str], seen: NearDuplicateIndex) -> str:
    """A paragraph that is neither a copy nor a near copy of any paragraph made before, so the
    demo's splits pass the contamination check the way a real split by company would."""
    for _ in range(_MAX_ATTEMPTS):
        text = make()
        if not seen.find(text):
            seen.add(None, text)
            return text
    raise DataError("demo templates are too few to produce the requested number of distinct paragraphs")


def _labeled(rng: Random, split: str, per_cell: int, seen: NearDuplicateIndex) -> list[dict[str, str]]:
    issuers = _filings(rng, _LABELED_ISSUERS)  # fictional filers the paragraphs pretend to come from
    rows = []
    for category in CATEGORIES:
        for level, specificity in enumerate(SPECIFICITY_LEVELS):
            for _ in range(per_cell):
                issuer = rng.choice(issuers)
                slots = _Slots(rng, issuer.context)
                text = _unique(functools.partial(_paragraph, rng, slots, category, level), seen)
                # Where the paragraph "comes from", as `corpus item1c` records it: what
                # `sec-cybert split --by company|filing` groups by.
                source = {key: issuer.metadata[key] for key in ("cik", "company", "accession", "fiscal_year")}
                rows.append({"text": text, "category": category, "specificity": specificity, **source})
    rng.shuffle(rows)
    return [{"id": f"demo-{split}-{i:05d}", **row} for i, row in enumerate(rows)]


# --------------------------------------------------------------------------------------------
# Filing documents


def _render_all(templates: Iterable[str], rng: Random, slots: _Slots) -> list[str]:
    return [_render(t, rng, slots) for t in templates]


def _document(rng: Random, filing: _Filing, item1c: Sequence[tuple[str, str]], size: DemoSize) -> str:
    spec = _templates().filing
    slots = _Slots(rng, filing.context)
    head = [*_render_all(spec["cover"], rng, slots), "PART I", spec["item1"]["heading"]]
    head += _render_all(spec["item1"]["paragraphs"], rng, slots)
    risk_intro = [spec["item1a"]["heading"], _render(spec["item1a"]["intro"], rng, slots)]
    cyber = [spec["item1b"]["heading"], *spec["item1b"]["paragraphs"], spec["item1c"]["heading"]]
    cyber += _item1c_blocks(spec["item1c"], item1c)
    middle = []
    for key in ("item2", "item3"):
        middle += [spec[key]["heading"], *_render_all(spec[key]["paragraphs"], rng, slots)]
    middle += ["Item 4. Mine Safety Disclosures", "Not applicable.", "PART II"]
    middle += [spec["item5"]["heading"], *_render_all(spec["item5"]["paragraphs"], rng, slots)]
    mdna = [spec["item7"]["heading"], *_render_all(spec["item7"]["paragraphs"], rng, slots)]
    tail = [spec["item7a"]["heading"], *_render_all(spec["item7a"]["paragraphs"], rng, slots)]

    risk_factors = [
        f"{_render(rf['heading'], rng, slots)}\n{_render(rf['body'], rng, slots)}"
        for rf in spec["item1a"]["risk_factors"]
    ]
    extras = _render_all(spec["item7"]["extra"], rng, slots)
    used = sum(_word_count(b) for b in (*head, *risk_intro, *cyber, *middle, *mdna, *tail))
    chosen_rf, chosen_extra = _fill(rng, used, risk_factors, extras, size)
    blocks = [*head, *risk_intro, *chosen_rf, *cyber, *middle, *mdna[:3], *chosen_extra, *mdna[3:], *tail]
    return "\n\n".join(blocks)


def _item1c_blocks(spec: Mapping[str, str], paragraphs: Sequence[tuple[str, str]]) -> list[str]:
    blocks: list[str] = []
    in_governance = None
    for category, text in paragraphs:
        governance = category in _GOVERNANCE
        if governance != in_governance:
            blocks.append(spec["governance_heading"] if governance else spec["risk_heading"])
            in_governance = governance
        blocks.append(text)
    return blocks


def _fill(
    rng: Random, used: int, risk_factors: Sequence[str], extras: Sequence[str], size: DemoSize
) -> tuple[list[str], list[str]]:
    """Pick risk factors, then MD&A paragraphs, until the document reaches a drawn word target.

    Picks keep their template order, so a filing reads in a stable, plausible sequence.
    """
    target = rng.randint(size.dapt_min_words, size.dapt_max_words)
    picked: dict[str, set[int]] = {"rf": set(), "extra": set()}
    candidates = [("rf", i) for i in rng.sample(range(len(risk_factors)), len(risk_factors))]
    candidates += [("extra", i) for i in rng.sample(range(len(extras)), len(extras))]
    # The second pass only runs if the target left the document short of the minimum.
    for limit in (target, size.dapt_max_words):
        for kind, index in candidates:
            words = _word_count((risk_factors if kind == "rf" else extras)[index])
            if index not in picked[kind] and used + words <= limit:
                picked[kind].add(index)
                used += words
        if used >= size.dapt_min_words:
            break
    return [risk_factors[i] for i in sorted(picked["rf"])], [extras[i] for i in sorted(picked["extra"])]


# --------------------------------------------------------------------------------------------
# Writing


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_shards(dapt_dir: Path, documents: Sequence[Mapping[str, Any]], per_shard: int) -> None:
    dapt_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for index, chunk in enumerate(_chunks(documents, per_shard)):
        path = dapt_dir / f"shard-{index:05d}.jsonl"
        _write_jsonl(path, chunk)
        written.add(path)
    # A previous, larger write would otherwise leave shards that change what a reader sees.
    for stale in dapt_dir.glob("shard-*.jsonl"):
        if stale not in written:
            stale.unlink()


def write_demo_corpus(out_dir: Path, *, seed: int = 0, size: DemoSize = DemoSize()) -> DemoCorpus:
    """Write the demo corpus under ``out_dir`` and return where each part is.

    Layout: ``dapt/shard-NNNNN.jsonl`` (filings), ``tapt/paragraphs.jsonl`` (their unlabeled Item 1C
    paragraphs) and ``labeled/{train,eval,holdout}.jsonl``. Existing files are overwritten, so
    writing twice gives identical bytes. No paragraph appears twice anywhere in the corpus, not
    even as a near copy (:mod:`sec_cybert.corpus.dedup`'s defaults), so eval and holdout never
    repeat a train or TAPT text.
    """
    out_dir = Path(out_dir)
    seen = NearDuplicateIndex()  # the contamination check's own defaults
    filings = _filings(Random(f"demo:{seed}:filings"), size.dapt_documents)
    sections = _item1c_sections(Random(f"demo:{seed}:item1c"), filings, size.tapt_paragraphs, seen)

    doc_rng = Random(f"demo:{seed}:documents")
    documents = []
    paragraphs = []
    for filing, section in zip(filings, sections, strict=True):
        doc_id = f"demo-10k-{filing.metadata['cik']}-{filing.metadata['fiscal_year']}"
        text = _document(doc_rng, filing, section, size)
        documents.append({"id": doc_id, "text": text, "metadata": dict(filing.metadata)})
        for index, (_, paragraph) in enumerate(section):
            metadata = {**filing.metadata, "section": "Item 1C", "paragraph_index": index}
            paragraphs.append({"id": f"{doc_id}-p{index:02d}", "text": paragraph, "metadata": metadata})
    paragraphs = paragraphs[: size.tapt_paragraphs]  # filings with no share still got one paragraph

    labeled = {
        split: _labeled(Random(f"demo:{seed}:{split}"), split, size.per_cell(split), seen) for split in SPLITS
    }

    dapt_dir = out_dir / "dapt"
    _write_shards(dapt_dir, documents, size.documents_per_shard)
    (out_dir / "tapt").mkdir(parents=True, exist_ok=True)
    (out_dir / "labeled").mkdir(parents=True, exist_ok=True)
    paragraphs_file = out_dir / "tapt" / "paragraphs.jsonl"
    _write_jsonl(paragraphs_file, paragraphs)
    files = {split: out_dir / "labeled" / f"{split}.jsonl" for split in SPLITS}
    for split, rows in labeled.items():
        _write_jsonl(files[split], rows)
    return DemoCorpus(
        root=out_dir,
        dapt_dir=dapt_dir,
        paragraphs_file=paragraphs_file,
        train_file=files["train"],
        eval_file=files["eval"],
        holdout_file=files["holdout"],
        n_documents=len(documents),
        n_paragraphs=len(paragraphs),
        n_train=len(labeled["train"]),
        n_eval=len(labeled["eval"]),
        n_holdout=len(labeled["holdout"]),
    )
