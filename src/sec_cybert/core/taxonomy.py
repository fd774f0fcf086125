"""The two label sets for Item 1C paragraphs: what a paragraph is about, and how specific it is.

Categories (what the paragraph discloses):

``Board Governance``
    Oversight by the board of directors or one of its committees: which body oversees cyber risk,
    how and how often it is briefed, what the directors know.
``Management Role``
    The executives and teams who assess and manage cyber risk: titles, reporting lines,
    qualifications and experience, how management is kept informed.
``Risk Management Process``
    The processes themselves: risk assessment, controls, monitoring, testing, training, incident
    response planning, frameworks, integration with enterprise risk management.
``Third-Party Risk``
    Risks from vendors, suppliers and service providers, and the use of outside assessors,
    auditors and consultants.
``Incident Disclosure``
    Cybersecurity incidents that happened (or the statement that none was material): what occurred,
    when, its effect, and how it was contained and reported.
``Strategy Integration``
    How cyber risk bears on business strategy, results of operations and financial condition:
    investment, budgeting, insurance, and whether threats are reasonably likely to have a
    material effect.
``None/Other``
    Text that sits in Item 1C without disclosing any of the above: cross-references,
    forward-looking-statement caveats, headings that escaped extraction, general company facts.

Specificity levels, lowest first. A paragraph takes the level of its *most* specific statement, so
one quantified fact makes an otherwise generic paragraph ``Quantified-Verifiable``.

1. ``Generic Boilerplate`` — could be pasted unchanged into any registrant's filing. Actors are
   generic ("management", "the Board", "third parties"), practices are generic ("we assess and
   manage risks"), and there are no industry terms, titles, committee or program names, counts,
   dates or amounts. Cadence words such as "periodically" do not raise the level.
2. ``Sector-Adapted`` — still says nothing that tells this firm apart from its peers, but adapts
   the statement to an industry: it names the kinds of data, systems, threats, counterparties or
   sector regulation that a company of this type faces ("protected health information", "grid
   control systems", "as a bank holding company"). Every firm in the sector could say it.
3. ``Firm-Specific`` — describes this registrant's own arrangements: a titled role (CISO, CIO,
   Chief Risk Officer), a named board or management committee, a named internal team or program,
   a stated reporting line, or a framework the program is said to be aligned with. The facts
   distinguish the firm but an outsider could not check them against a number or a record.
4. ``Quantified-Verifiable`` — contains at least one fact that is counted, dated or independently
   attestable: years of experience, headcounts, numbers of meetings or exercises, dates, dollar
   amounts, percentages, a professional certification held by a named role (CISSP, CISM), an
   external certification or attestation of the program (ISO/IEC 27001 certification, SOC 2
   Type II report), or a named outside assessor.

What separates 2 from 3 is *whose* fact it is (the industry's vs. the firm's); what separates
3 from 4 is whether the fact can be measured or verified.
"""

from __future__ import annotations

from typing import Final

CATEGORIES: Final[tuple[str, ...]] = (
    "Board Governance",
    "Management Role",
    "Risk Management Process",
    "Third-Party Risk",
    "Incident Disclosure",
    "Strategy Integration",
    "None/Other",
)

SPECIFICITY_LEVELS: Final[tuple[str, ...]] = (
    "Generic Boilerplate",
    "Sector-Adapted",
    "Firm-Specific",
    "Quantified-Verifiable",
)


def specificity_rank(level: str) -> int:
    """Ordinal position of a specificity level, 0 for the most generic; ValueError if unknown."""
    try:
        return SPECIFICITY_LEVELS.index(level)
    except ValueError:
        raise ValueError(
            f"unknown specificity level {level!r}; known: {', '.join(SPECIFICITY_LEVELS)}"
        ) from None
