"""Natural-language questions for drawn queries: several phrasings per template, and answers.

A question is split as `TaskSample` wants it: the core question (what is asked) and the format
instruction (how to write the answer), which the memory agent shows only in its final step.
Every question names what the SQL fixes: the entities (a cross-entity question lists its group,
because assembly later adds other companies' reports as distractors), the metric, the years,
the aggregate, ranking direction or threshold, and the unit. Those words are `protected`: an
LLM paraphrase must keep each of them (see `paraphrase`).

Answer strings (what `answers` holds):
- numbers: rounded half away from zero to `decimals` places, plain decimal notation without
  trailing zeros or thousands separators ("1234.5", "-12", "0.07"); the instruction asks for
  that rounding. Percentages are numbers of percent without the sign ("12.5" for 12.5%).
- one entity: its name as the long table spells it.
- entity lists: names in alphabetical order joined by ", " ("Acme, Borealis"); an empty result
  is the word "none", and the instruction tells the model to write exactly that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from qwenlong.synth.numerical.config import NumericalConfig
from qwenlong.synth.numerical.sql_templates import Query, Slots, decimal_text
from qwenlong.synth.numerical.units import metric_phrase

EMPTY_ANSWER = "none"
"""The answer string of a list question whose SQL returned no rows."""

LIST_SEPARATOR = ", "

PHRASINGS: dict[str, tuple[str, ...]] = {
    "year_difference": (
        "By how much did the {metric} of {entity} change from {first} to {last}?",
        "What is {entity_s} {metric} in {last} minus its {metric} in {first}?",
        "How much higher or lower was {entity_s} {metric} in {last} than in {first}?",
    ),
    "entity_years": (
        "What is the {agg_noun} of {entity_s} yearly {metric} from {first} to {last}, both "
        "years included?",
        "Considering every year from {first} through {last}, what was the {agg_adj} annual "
        "{metric} of {entity}?",
        "Over the years {first} to {last}, what is the {agg_noun} of the {metric} that "
        "{entity} reported each year?",
    ),
    "top_entity": (
        "Among {group}, which {noun} had the {direction} {metric} in {year}?",
        "In {year}, which {noun} among {group} reported the {direction} {metric}?",
        "Of the {nouns} {group}, which one had the {direction} {metric} in {year}?",
    ),
    "kth_ranking": (
        "Among {group}, which {noun} had the {ordinal} {direction} {metric} in {year}?",
        "In {year}, which {noun} among {group} reported the {ordinal} {direction} {metric}?",
        "Ordering {group} by their {metric} in {year}, which {noun} is the {ordinal} {direction}?",
    ),
    "group_aggregate": (
        "What was the {agg_adj} {metric} among {group} in {year}?",
        "Taking {group} together, what is the {agg_noun} of their {metric} for {year}?",
        "For {year}, what is the {agg_noun} of the {metric} reported by {group}?",
    ),
    "entity_ratio": (
        "What is the ratio of {first_entity_s} {metric} to {second_entity_s} {metric} in {year}?",
        "In {year}, {first_entity_s} {metric} was how many times that of {second_entity}?",
        "Dividing {first_entity_s} {metric} for {year} by {second_entity_s} {metric} for the "
        "same year gives what ratio?",
    ),
    "metric_share": (
        "What was {entity_s} {metric} as a percentage of its {other} in {year}?",
        "In {year}, how large was {entity_s} {metric} relative to its {other}, as a percentage?",
        "Expressed as a percentage of its {other}, what was {entity_s} {metric} in {year}?",
    ),
    "growth_ranking": (
        "Among {group}, which {noun} had the {direction} percentage growth in {metric} from "
        "{first} to {last}?",
        "Which {noun} among {group} recorded the {direction} relative growth of {metric} "
        "between {first} and {last}?",
        "From {first} to {last}, whose {metric} grew by the {direction} percentage among {group}?",
    ),
    "group_change": (
        "By what percentage did the combined {metric} of {group} change from {first} to {last}?",
        "Taking {group} together, what was the percentage change in their total {metric} "
        "between {first} and {last}?",
        "What is the percentage change from {first} to {last} in the total {metric} of {group}?",
    ),
    "filter_any_after": (
        "Among {group}, whose {metric} was {comparison} {threshold}{unit_suffix} in at least "
        "one year after {year}?",
        "Which of {group} had a year after {year} in which their {metric} was {comparison} "
        "{threshold}{unit_suffix}?",
        "Which {nouns} among {group} had their {metric} {comparison} {threshold}{unit_suffix} "
        "in some year later than {year}?",
    ),
    "filter_every_between": (
        "Among {group}, whose {metric} was {comparison} {threshold}{unit_suffix} in every year "
        "from {first} to {last}?",
        "Which {nouns} among {group} kept their {metric} {comparison} {threshold}{unit_suffix} "
        "in each year from {first} through {last}?",
        "From {first} to {last}, which of {group} had their {metric} {comparison} "
        "{threshold}{unit_suffix} in every single year?",
    ),
}
"""Template name -> phrasings (ours). Every phrasing of a template uses the same slots."""

AGG_NOUNS = {"sum": "total", "avg": "average", "max": "maximum", "min": "minimum"}
AGG_ADJECTIVES = {"sum": "total", "avg": "average", "max": "highest", "min": "lowest"}
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
DECREASE_NOTE = "Use a negative number for a decrease."


@dataclass(frozen=True)
class QuestionText:
    """A question, its format instruction, and the words a paraphrase must keep."""

    question: str
    instruction: str
    protected: tuple[str, ...]


def possessive(name: str) -> str:
    """English possessive: "Acme's", "Acme Systems'"."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def join_names(names: tuple[str, ...] | list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _unit_words(unit: str) -> str:
    return "percent" if unit == "%" else unit


def _instruction(query: Query, config: NumericalConfig) -> str:
    noun, nouns = config.entity_noun
    if query.shape == "entity":
        return f"Answer with the name of the {noun} only."
    if query.shape == "entities":
        return (
            f"Answer with the names of the {nouns} in alphabetical order, separated by "
            f'commas, or with "{EMPTY_ANSWER}" if no {noun} qualifies.'
        )
    rounding = (
        "rounded to a whole number"
        if config.decimals == 0
        else f"rounded to {config.decimals} decimal places"
    )
    slots = query.slots
    if slots.number == "percent":
        text = f"Answer with a single number (a percentage, without the % sign), {rounding}."
    elif slots.number == "ratio" or not slots.unit:
        text = f"Answer with a single number, {rounding}."
    else:
        text = f"Answer with a single number in {_unit_words(slots.unit)}, {rounding}."
    if query.template in ("year_difference", "group_change"):
        text += " " + DECREASE_NOTE
    return text


def _fields(slots: Slots, config: NumericalConfig) -> dict[str, str]:
    noun, nouns = config.entity_noun
    entities = slots.entities
    first_year, last_year = slots.years[0], slots.years[-1]
    return {
        "metric": metric_phrase(slots.metric),
        "other": metric_phrase(slots.other_metric) if slots.other_metric else "",
        "entity": entities[0],
        "entity_s": possessive(entities[0]),
        "first_entity_s": possessive(entities[0]),
        "second_entity": entities[-1],
        "second_entity_s": possessive(entities[-1]),
        "group": join_names(entities),
        "year": str(first_year),
        "first": str(first_year),
        "last": str(last_year),
        "agg_noun": AGG_NOUNS.get(slots.aggregate, ""),
        "agg_adj": AGG_ADJECTIVES.get(slots.aggregate, ""),
        "direction": slots.direction,
        "comparison": slots.direction,
        "ordinal": ORDINALS.get(slots.k, f"{slots.k}th"),
        "threshold": slots.threshold,
        "unit_suffix": f" {_unit_words(slots.unit)}" if slots.unit else "",
        "noun": noun,
        "nouns": nouns,
    }


def render_question(query: Query, rng: random.Random, config: NumericalConfig) -> QuestionText:
    """One phrasing of `query`'s template, drawn with `rng`, filled from its slots."""
    phrasing = rng.choice(PHRASINGS[query.template])
    fields = _fields(query.slots, config)
    question = phrasing.format(**fields)
    used = [key for key in fields if "{" + key + "}" in phrasing]
    protected = {*query.slots.entities, fields["metric"], *map(str, query.slots.years)}
    checked = ("other", "agg_noun", "agg_adj", "direction", "comparison", "ordinal", "threshold")
    protected.update(
        fields[key].strip() for key in (*checked, "unit_suffix") if key in used and fields[key]
    )
    return QuestionText(question, _instruction(query, config), tuple(sorted(protected)))


def format_number(value: float, decimals: int) -> str:
    """A numeric answer string: `value` rounded half away from zero to `decimals` places.

    The float is first read at 12 significant digits, so binary noise from summation
    (0.1 + 0.2 = 0.30000000000000004) cannot tip a half-way case; then it is rounded and
    written in plain notation without trailing zeros ("1234.5", "-12", "0").
    """
    noisy = Decimal(repr(float(value)))
    if noisy.is_zero():
        return "0"
    clean = noisy.quantize(Decimal(1).scaleb(noisy.adjusted() - 11), rounding=ROUND_HALF_UP)
    rounded = clean.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return decimal_text(rounded)


def answer_strings(query: Query, rows: list[tuple], decimals: int) -> list[str] | None:
    """The gold answers from the SQL result rows, or None when the result is unusable (a NULL
    or non-finite number, or a single-entity query that returned nothing)."""
    if query.shape == "entities":
        names = sorted(str(row[0]) for row in rows)
        return [LIST_SEPARATOR.join(names) if names else EMPTY_ANSWER]
    if len(rows) != 1 or rows[0][0] is None:
        return None
    if query.shape == "entity":
        return [str(rows[0][0])]
    value = float(rows[0][0])
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return [format_number(value, decimals)]
