"""The demo corpus's fictional companies and their 10-K filings: names, CIKs, tickers, fiscal
years, filing dates and accession numbers, and one consistent set of financial figures per filing.
All drawn from the ``random.Random`` handed in."""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Mapping
from random import Random
from typing import Any

import attrs

from sec_cybert.testing.demo_text import long_date, money, templates

FILING_DATE_RANGE: tuple[dt.date, dt.date] = (dt.date(2023, 1, 1), dt.date(2025, 12, 31))

_FILINGS_PER_COMPANY = 3
# Filing lag after fiscal year end; the SEC deadline is 60-90 days depending on filer status.
_FILING_LAG_DAYS = (45, 85)
_MAX_ATTEMPTS = 200


@attrs.frozen
class Filing:
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
    fillers = templates().fillers
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
        "revenue_m": money(revenue),
        "prior_revenue_m": money(revenue / (1 + growth / 100)),
        "direction": "an increase" if growth >= 0 else "a decrease",
        "growth_pct": f"{abs(growth):.1f}",
        "gross_margin_pct": f"{gross_margin:.1f}",
        "prior_gross_margin_pct": f"{gross_margin + rng.uniform(-3, 3):.1f}",
        "opex_m": money(opex),
        "operating_income_m": money(operating_income),
        "net_income_m": money(net_income),
        "eps": f"{net_income / shares_m:.2f}",
        "cash_m": money(revenue * rng.uniform(0.03, 0.2)),
        "debt_m": money(debt),
        "capex_m": money(revenue * rng.uniform(0.02, 0.08)),
        "buyback_m": money(net_income * rng.uniform(0.05, 0.5)),
        "operating_cash_m": money(net_income * rng.uniform(1.1, 1.6)),
        "tax_rate": f"{rng.uniform(19, 27):.1f}",
        "market_value_m": money(market_value),
        "filer_status": "Large accelerated filer" if market_value >= 700 else "Accelerated filer",
        "rate_sensitivity_m": money(debt * 0.01 * rng.uniform(0.3, 1.0)),
        "segment_share": str(rng.randint(40, 75)),
        "sq_ft": f"{rng.randint(40, 650) * 1000:,}",
        "n_facilities": str(rng.randint(6, 240)),
    }


def make_filings(rng: Random, count: int) -> list[Filing]:
    filings: list[Filing] = []
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
            context |= {"fy": str(year), "fye_text": long_date(fye), "filing_date_text": long_date(filed)}
            filings.append(Filing(metadata=metadata, context=context))
    return filings
