"""SQL templates by difficulty: each draws a well-posed query over `metric_values`.

A template picks a metric, entities and years from the `Catalog` with the caller's
`random.Random`, checks the question is well posed (every value it needs is present, no tie
where one entity is asked for, no division by zero or by a negative base), and writes the
query as self-contained SQL with every literal inlined, so the stored text re-runs anywhere.
The ground truth is what DuckDB returns for that SQL, never the catalog's numbers.

| level  | template             | answer   | asks for                                            |
|--------|----------------------|----------|-----------------------------------------------------|
| easy   | year_difference      | number   | one entity's change between two years               |
| easy   | entity_years         | number   | sum/average/max/min of one entity over a year range |
| easy   | top_entity           | entity   | highest or lowest in a group in one year            |
| medium | group_aggregate      | number   | sum/average/max/min over a group in one year        |
| medium | entity_ratio         | number   | one entity's value divided by another's             |
| medium | metric_share         | number   | a smaller metric as a percentage of a larger one    |
| medium | kth_ranking          | entity   | the k-th highest or lowest in a group (k >= 2)      |
| hard   | growth_ranking       | entity   | largest or smallest percentage growth in a group    |
| hard   | group_change         | number   | percentage change of a group's total                |
| hard   | filter_any_after     | entities | who exceeded X in some year after Y (maybe none)    |
| hard   | filter_every_between | entities | who stayed above/below X in every year of a range   |
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Literal

from qwenlong.core.registry import Registry
from qwenlong.synth.numerical.config import LEVELS, NumericalConfig
from qwenlong.synth.numerical.factdb import Catalog, Scope, sql_list, sql_string

AnswerShape = Literal["number", "entity", "entities"]

AGGREGATES: dict[str, str] = {"sum": "SUM", "avg": "AVG", "max": "MAX", "min": "MIN"}
"""Aggregate slot -> SQL function."""


@dataclass(frozen=True)
class Slots:
    """What a question about a query must state; `questions` turns it into words."""

    metric: str
    unit: str
    entities: tuple[str, ...]
    """The one entity asked about, the group compared (sorted), or for `entity_ratio` the
    numerator's entity then the denominator's."""
    years: tuple[int, ...]
    """The year, or the first and last year of a range, in order."""
    aggregate: str = ""
    """A key of AGGREGATES."""
    direction: str = ""
    """"highest" or "lowest"; for filters "above" or "below"."""
    k: int = 0
    threshold: str = ""
    """The filter's threshold as a decimal string, in the metric's unit."""
    other_metric: str = ""
    """The denominator metric of `metric_share`."""
    number: str = "amount"
    """How a numeric answer reads: "amount" (in `unit`), "ratio" or "percent"."""


@dataclass(frozen=True)
class Query:
    """A drawn query: the SQL, what it reads, and what its question must say."""

    template: str
    level: str
    sql: str
    scope: Scope
    shape: AnswerShape
    slots: Slots


TemplateBuilder = Callable[[Catalog, random.Random, NumericalConfig], Query | None]


@dataclass(frozen=True)
class SqlTemplate:
    """A named template at one difficulty level."""

    name: str
    level: str
    build: TemplateBuilder
    """Draws a query, or returns None when the drawn metric and entities cannot make a
    well-posed question (the generator then draws again)."""


SQL_TEMPLATES: Registry[SqlTemplate] = Registry("numerical SQL template")


def template(name: str, level: str) -> Callable[[TemplateBuilder], TemplateBuilder]:
    """Register a builder function as the template `name` at `level`."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}")

    def add(build: TemplateBuilder) -> TemplateBuilder:
        SQL_TEMPLATES.add(name, SqlTemplate(name, level, build))
        return build

    return add


# --- numbers --------------------------------------------------------------------------------


def round_significant(value: float, digits: int) -> Decimal:
    """`value` rounded half away from zero to `digits` significant digits."""
    exact = Decimal(repr(value))
    if exact == 0:
        return Decimal(0)
    quantum = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    return exact.quantize(quantum, rounding=ROUND_HALF_UP)


def nice_between(low: float, high: float) -> Decimal:
    """The midpoint of `low` and `high`, rounded to the fewest significant digits that keep it
    strictly between them: a threshold that reads naturally ("above 1200", not "above
    1187.35") and still splits the values exactly where intended."""
    middle = (low + high) / 2
    for digits in range(1, 17):
        candidate = round_significant(middle, digits)
        if low < candidate < high:
            return candidate
    return Decimal(repr(middle))


def decimal_text(value: Decimal) -> str:
    """Plain decimal notation, no exponent, no trailing zeros after the point."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- drawing helpers ------------------------------------------------------------------------


def _is_percent(catalog: Catalog, metric: str) -> bool:
    return catalog.units.get(metric) == "%"


def _draw_group(
    catalog: Catalog, rng: random.Random, config: NumericalConfig, metric: str, years: list[int]
) -> tuple[str, ...] | None:
    """A sorted group of entities that all have `metric` in every one of `years`."""
    pool = catalog.entities(metric, years)
    low, high = config.group_size
    if len(pool) < low:
        return None
    size = rng.randint(low, min(high, len(pool)))
    return tuple(sorted(rng.sample(pool, size)))


def _two_years(rng: random.Random, years: list[int]) -> tuple[int, int] | None:
    if len(years) < 2:
        return None
    first, last = sorted(rng.sample(years, 2))
    return first, last


def _where(metric: str, entities: tuple[str, ...]) -> str:
    if len(entities) == 1:
        return f"metric = {sql_string(metric)} AND entity = {sql_string(entities[0])}"
    return f"metric = {sql_string(metric)} AND entity IN {sql_list(entities)}"


def _value_sql(metric: str, entity: str, year: int) -> str:
    return f"(SELECT value FROM metric_values WHERE {_where(metric, (entity,))} AND year = {year})"


def _distinct(values: list[float]) -> bool:
    """No two values within a relative 1e-9 of each other: a tie, or a near-tie that float
    rounding could order differently in DuckDB and in a reader's arithmetic."""
    ordered = sorted(values)
    return all(b - a > 1e-9 * max(1.0, abs(a), abs(b)) for a, b in pairwise(ordered))


# --- easy -----------------------------------------------------------------------------------


@template("year_difference", "easy")
def year_difference(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    entity = rng.choice(catalog.entities(metric))
    pair = _two_years(rng, list(catalog.series(metric, entity)))
    if pair is None:
        return None
    first, last = pair
    sql = (
        f"SELECT {_value_sql(metric, entity, last)} - {_value_sql(metric, entity, first)} AS answer"
    )
    slots = Slots(metric, catalog.units[metric], (entity,), (first, last))
    return Query(
        "year_difference", "easy", sql, Scope((metric,), (entity,), (first, last)), "number", slots
    )


@template("entity_years", "easy")
def entity_years(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    entity = rng.choice(catalog.entities(metric))
    years = list(catalog.series(metric, entity))
    pair = _two_years(rng, years)
    if pair is None:
        return None
    first, last = pair
    span = tuple(range(first, last + 1))
    if not set(span) <= set(years):
        return None
    options = [a for a in AGGREGATES if not (a == "sum" and _is_percent(catalog, metric))]
    aggregate = rng.choice(options)
    sql = (
        f"SELECT {AGGREGATES[aggregate]}(value) AS answer FROM metric_values "
        f"WHERE {_where(metric, (entity,))} AND year BETWEEN {first} AND {last}"
    )
    slots = Slots(metric, catalog.units[metric], (entity,), (first, last), aggregate=aggregate)
    return Query("entity_years", "easy", sql, Scope((metric,), (entity,), span), "number", slots)


def _ranked(
    name: str,
    level: str,
    k_range: tuple[int, int],
    catalog: Catalog,
    rng: random.Random,
    config: NumericalConfig,
) -> Query | None:
    """The k-th highest or lowest entity of a group in one year, k in `k_range`.

    k stays below the group size, so "the k-th highest" is never just "the lowest" in disguise;
    the group's values must all differ, so exactly one entity holds each place.
    """
    metric = rng.choice(catalog.metrics())
    year = rng.choice(catalog.years(metric))
    group = _draw_group(catalog, rng, config, metric, [year])
    if group is None:
        return None
    top_k = min(k_range[1], len(group) - 1)
    if top_k < k_range[0] or not _distinct([catalog.series(metric, e)[year] for e in group]):
        return None
    k = rng.randint(k_range[0], top_k)
    direction = rng.choice(("highest", "lowest"))
    order = "DESC" if direction == "highest" else "ASC"
    sql = (
        f"SELECT entity FROM metric_values WHERE {_where(metric, group)} AND year = {year} "
        f"ORDER BY value {order} LIMIT 1 OFFSET {k - 1}"
    )
    slots = Slots(metric, catalog.units[metric], group, (year,), direction=direction, k=k)
    return Query(name, level, sql, Scope((metric,), group, (year,)), "entity", slots)


@template("top_entity", "easy")
def top_entity(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    return _ranked("top_entity", "easy", (1, 1), catalog, rng, config)


# --- medium ---------------------------------------------------------------------------------


@template("group_aggregate", "medium")
def group_aggregate(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    year = rng.choice(catalog.years(metric))
    group = _draw_group(catalog, rng, config, metric, [year])
    if group is None:
        return None
    options = [a for a in AGGREGATES if not (a == "sum" and _is_percent(catalog, metric))]
    aggregate = rng.choice(options)
    sql = (
        f"SELECT {AGGREGATES[aggregate]}(value) AS answer FROM metric_values "
        f"WHERE {_where(metric, group)} AND year = {year}"
    )
    slots = Slots(metric, catalog.units[metric], group, (year,), aggregate=aggregate)
    return Query(
        "group_aggregate", "medium", sql, Scope((metric,), group, (year,)), "number", slots
    )


@template("entity_ratio", "medium")
def entity_ratio(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    year = rng.choice(catalog.years(metric))
    pool = catalog.entities(metric, [year])
    if len(pool) < 2 or _is_percent(catalog, metric):
        return None
    first, second = rng.sample(pool, 2)
    if catalog.series(metric, second)[year] <= 0:
        return None
    sql = f"SELECT {_value_sql(metric, first, year)} / {_value_sql(metric, second, year)} AS answer"
    slots = Slots(metric, catalog.units[metric], (first, second), (year,), number="ratio")
    scope = Scope((metric,), tuple(sorted((first, second))), (year,))
    return Query("entity_ratio", "medium", sql, scope, "number", slots)


@template("metric_share", "medium")
def metric_share(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    unit = catalog.units[metric]
    others = [m for m in catalog.metrics() if m != metric and catalog.units[m] == unit]
    if not others or unit == "%":
        return None
    other = rng.choice(others)
    entity = rng.choice(catalog.entities(metric))
    shared = sorted(set(catalog.series(metric, entity)) & set(catalog.series(other, entity)))
    if not shared:
        return None
    year = rng.choice(shared)
    part, whole = catalog.series(metric, entity)[year], catalog.series(other, entity)[year]
    if whole <= 0 or abs(part) > whole:
        return None
    sql = (
        f"SELECT 100 * {_value_sql(metric, entity, year)} / {_value_sql(other, entity, year)} "
        "AS answer"
    )
    slots = Slots(metric, unit, (entity,), (year,), other_metric=other, number="percent")
    scope = Scope(tuple(sorted((metric, other))), (entity,), (year,))
    return Query("metric_share", "medium", sql, scope, "number", slots)


@template("kth_ranking", "medium")
def kth_ranking(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    return _ranked("kth_ranking", "medium", (2, 3), catalog, rng, config)


# --- hard -----------------------------------------------------------------------------------


def _group_over_years(
    catalog: Catalog, rng: random.Random, config: NumericalConfig, metric: str
) -> tuple[tuple[str, ...], int, int] | None:
    pair = _two_years(rng, catalog.years(metric))
    if pair is None:
        return None
    group = _draw_group(catalog, rng, config, metric, list(pair))
    return None if group is None else (group, *pair)


@template("growth_ranking", "hard")
def growth_ranking(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    drawn = _group_over_years(catalog, rng, config, metric)
    if drawn is None or _is_percent(catalog, metric):
        return None
    group, first, last = drawn
    series = [catalog.series(metric, e) for e in group]
    if any(s[first] <= 0 for s in series):
        return None
    if not _distinct([(s[last] - s[first]) / s[first] for s in series]):
        return None
    direction = rng.choice(("highest", "lowest"))
    order = "DESC" if direction == "highest" else "ASC"
    sql = (
        "SELECT a.entity FROM metric_values a JOIN metric_values b "
        "ON a.entity = b.entity AND a.metric = b.metric "
        f"WHERE a.metric = {sql_string(metric)} AND a.entity IN {sql_list(group)} "
        f"AND a.year = {last} AND b.year = {first} "
        f"ORDER BY (a.value - b.value) / b.value {order} LIMIT 1"
    )
    slots = Slots(metric, catalog.units[metric], group, (first, last), direction=direction)
    scope = Scope((metric,), group, (first, last))
    return Query("growth_ranking", "hard", sql, scope, "entity", slots)


@template("group_change", "hard")
def group_change(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    drawn = _group_over_years(catalog, rng, config, metric)
    if drawn is None or _is_percent(catalog, metric):
        return None
    group, first, last = drawn
    if sum(catalog.series(metric, e)[first] for e in group) <= 0:
        return None
    total = "SUM(value) FILTER (WHERE year = {})"
    sql = (
        f"SELECT 100 * ({total.format(last)} - {total.format(first)}) / {total.format(first)} "
        f"AS answer FROM metric_values WHERE {_where(metric, group)} "
        f"AND year IN ({first}, {last})"
    )
    slots = Slots(metric, catalog.units[metric], group, (first, last), number="percent")
    return Query(
        "group_change", "hard", sql, Scope((metric,), group, (first, last)), "number", slots
    )


def _threshold(
    stats: list[float], rng: random.Random, config: NumericalConfig, above: bool
) -> Decimal:
    """A threshold splitting the group's statistics, or (with probability `empty_fraction`)
    one that none of them passes: above the largest for "above", below the smallest else."""
    ordered = sorted(set(stats))
    margin = max(abs(ordered[-1] - ordered[0]) * 0.2, abs(ordered[-1]) * 0.1, 1.0)
    if len(ordered) < 2 or rng.random() < config.empty_fraction:
        if above:
            return nice_between(ordered[-1], ordered[-1] + margin)
        return nice_between(ordered[0] - margin, ordered[0])
    i = rng.randrange(len(ordered) - 1)
    return nice_between(ordered[i], ordered[i + 1])


@template("filter_any_after", "hard")
def filter_any_after(catalog: Catalog, rng: random.Random, config: NumericalConfig) -> Query | None:
    metric = rng.choice(catalog.metrics())
    years = catalog.years(metric)
    if len(years) < 2:
        return None
    after = rng.choice(years[:-1])
    later = [y for y in years if y > after]
    group = _draw_group(catalog, rng, config, metric, later)
    if group is None:
        return None
    stats = [max(catalog.series(metric, e)[y] for y in later) for e in group]
    threshold = decimal_text(_threshold(stats, rng, config, above=True))
    sql = (
        f"SELECT DISTINCT entity FROM metric_values WHERE {_where(metric, group)} "
        f"AND year > {after} AND value > {threshold} ORDER BY entity"
    )
    slots = Slots(
        metric, catalog.units[metric], group, (after,), direction="above", threshold=threshold
    )
    scope = Scope((metric,), group, tuple(later))
    return Query("filter_any_after", "hard", sql, scope, "entities", slots)


@template("filter_every_between", "hard")
def filter_every_between(
    catalog: Catalog, rng: random.Random, config: NumericalConfig
) -> Query | None:
    metric = rng.choice(catalog.metrics())
    pair = _two_years(rng, catalog.years(metric))
    if pair is None:
        return None
    first, last = pair
    span = list(range(first, last + 1))
    group = _draw_group(catalog, rng, config, metric, span)
    if group is None:
        return None
    above = rng.random() < 0.5
    pick = min if above else max
    stats = [pick(catalog.series(metric, e)[y] for y in span) for e in group]
    threshold = decimal_text(_threshold(stats, rng, config, above=above))
    test = f"MIN(value) > {threshold}" if above else f"MAX(value) < {threshold}"
    sql = (
        f"SELECT entity FROM metric_values WHERE {_where(metric, group)} "
        f"AND year BETWEEN {first} AND {last} GROUP BY entity "
        f"HAVING {test} AND COUNT(*) = {len(span)} ORDER BY entity"
    )
    slots = Slots(
        metric,
        catalog.units[metric],
        group,
        (first, last),
        direction="above" if above else "below",
        threshold=threshold,
    )
    scope = Scope((metric,), group, tuple(span))
    return Query("filter_every_between", "hard", sql, scope, "entities", slots)
