"""Company financial tables: the ground truth corpus-level numerical questions rest on.

Each company draws a starting revenue (log-normal, median about USD 400 million), a trend growth
rate and an operating margin; every year adds noise to both. Net income, R&D spend and head
count follow from revenue with company-specific ratios, so figures move together the way real
statements do (a bad year hurts income more than revenue). All parameters are our choice.
"""

from __future__ import annotations

import math

from qwenlong.core.seeding import derive_rng
from qwenlong.synth.world.config import WorldConfig
from qwenlong.synth.world.model import METRICS, Entity, FinancialRow

RESEARCH_HEAVY = ("software", "pharmaceuticals", "telecommunications")
"""Industries that spend 8-20% of revenue on R&D; the rest spend 1-5%."""


def _row(company: Entity, year: int, metric: str, value: float) -> FinancialRow:
    spec = METRICS[metric]
    rounded = round(value, spec.decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return FinancialRow(company.id, year, metric, rounded, spec.unit)


def company_financials(config: WorldConfig, company: Entity, industry: str) -> list[FinancialRow]:
    """Every metric for every report year of one company, in (year, metric) order."""
    rng = derive_rng(config.seed, "finance", company.id)
    revenue = math.exp(rng.gauss(math.log(400.0), 1.2))
    trend = rng.gauss(0.05, 0.05)
    margin = rng.uniform(0.05, 0.25)
    net_share = rng.uniform(0.6, 0.8)
    low, high = (0.08, 0.20) if industry in RESEARCH_HEAVY else (0.01, 0.05)
    rd_share = rng.uniform(low, high)
    revenue_per_head = rng.uniform(0.15, 0.5)
    employees_before: int | None = None
    rows = []
    for year in config.report_years:
        if employees_before is not None:
            revenue *= 1 + trend + rng.gauss(0, 0.06)
        year_margin = margin + rng.gauss(0, 0.03)
        operating = revenue * year_margin
        net = operating * net_share if operating > 0 else operating * 1.1
        employees = max(5, round(revenue / revenue_per_head * rng.uniform(0.97, 1.03)))
        growth = 0 if employees_before is None else max(0, employees - employees_before)
        base = employees if employees_before is None else employees_before
        new_hires = growth + round(base * rng.uniform(0.05, 0.12))
        values = {
            "revenue": revenue,
            "operating_income": operating,
            "net_income": net,
            "rd_spend": revenue * rd_share,
            "employees": employees,
            "new_hires": new_hires,
        }
        rows.extend(_row(company, year, metric, values[metric]) for metric in METRICS)
        employees_before = employees
    return rows
