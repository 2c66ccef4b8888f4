"""Periods as report column headers write them: years, fiscal years and balance-sheet dates.

A column's period is what a question "what was X in YEAR" or "at DATE" asks about:

- a year: "2021", "FY2021", "FY 21", "Fiscal 2022", "Fiscal year 2022", "2021/22", "Year ended
  December 31, 2021", "Twelve months ended June 30, 2022" (a fiscal year is named by the year
  it ends);
- a date: "December 31, 2021", "Dec. 31, 2021", "31 December 2021", "As of December 31, 2021",
  "At 31 March 2022", "31.12.2022", "12/31/2022" (a balance sheet's as-of date), written ISO:
  "2021-12-31".

A year column of a statement dated only in its caption ("As at 31 March 2024" above "2024 £m |
2023 £m") is that date, "2024-03-31", and its comparative columns the same day of their own
year ("2023-03-31"), since a statement of financial position compares like dates (IAS 1.38):
`as_of_date` reads the caption, `same_day` dates each column, `extract.headers` applies them.
The caption must name the as-of date with its year, and the year must be one the columns print
(a caption "as of December 31, 2021" over payments due in "2022 | 2023" dates nothing); a
caption "For the year ended ..." states no as-of date, its columns stay years. A 52/53-week
year's comparative may end a day or two off the same day; the caption does not say, so the
same day is what a reader can key.

Two years in one header are not a period: "2019 over 2018", "2021 vs. 2020", "2021-2022",
"Change 2021/2020" label a change or range column, which keeps its label instead.
What else the header says ("% of revenue", "Amount") is returned beside the period as the
column's qualifier, so "2021 | % of revenue" and "2021 | Amount" stay two columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip

_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_YEAR = r"(?:19|20)\d{2}"
_ANY_YEAR = re.compile(rf"(?<![\d.,])(?:{_YEAR})(?![\d.,]?\d)")
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}}),?\s+({_YEAR})\b", re.I)
_NUMERIC_DATE = re.compile(
    rf"(?<![\d.])(?:(\d{{1,2}})\.(\d{{1,2}})\.({_YEAR})|(\d{{1,2}})/(\d{{1,2}})/({_YEAR})|"
    rf"({_YEAR})-(\d{{2}})-(\d{{2}}))(?![\d.])"
)
"""31.12.2022 (day first, as European reports write it), 12/31/2022 (month first, US) and ISO."""
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})\s+({_MONTH})\.?,?\s+({_YEAR})\b", re.I)
_SPLIT_YEAR = re.compile(rf"\b(?:FY\s*)?({_YEAR})\s*/\s*(\d{{2}})(?![\d/])", re.I)
"""A fiscal year across two calendar years, named by the year it ends: "2021/22" is 2022."""
_FISCAL = re.compile(rf"\b(?:FY|fiscal(?:\s+year)?|financial\s+year)\s*'?(\d{{2}}|{_YEAR})\b", re.I)
_YEAR_ENDED = re.compile(
    r"\b(?:(?:fiscal\s+)?years?|twelve\s+months|12\s+months|52\s+weeks|53\s+weeks)\s+ended\b", re.I
)
_PERIOD_WORDS = re.compile(
    r"\b(?:(?:fiscal\s+)?years?|twelve\s+months|12\s+months|5[23]\s+weeks|periods?)\s+ended\b|"
    r"\b(?:as\s+(?:of|at)|at|for\s+the|ended|ending|fiscal(?:\s+year)?|financial\s+year|FY)\b",
    re.I,
)


@dataclass(frozen=True)
class Period:
    """A year ("2021") or an as-of date ("2021-12-31"), and the year a long table files it in."""

    text: str
    year: int

    @property
    def is_date(self) -> bool:
        return len(self.text) == 10


def _two_digit(year: str) -> int:
    return int(year) if len(year) == 4 else 2000 + int(year)


def find_period(header: str) -> tuple[Period | None, str]:
    """(period, what else the header says) of one column header; (None, header) when the header
    names no single period."""
    text = " ".join(header.split())
    numeric = _NUMERIC_DATE.search(text)
    if numeric is not None and len(_NUMERIC_DATE.findall(text)) == 1:
        day, month, year = _numeric_parts(numeric)
        if 1 <= month <= 12 and 1 <= day <= 31:
            iso = f"{year}-{month:02d}-{day:02d}"
            return Period(iso, year), _rest(text, numeric.span())
    split = _SPLIT_YEAR.search(text)
    if split is not None and int(split.group(2)) == (int(split.group(1)) + 1) % 100:
        year = int(split.group(1)) + 1
        return Period(str(year), year), _rest(text, split.span())
    years = _ANY_YEAR.findall(text)
    fiscal = _FISCAL.search(text)
    if fiscal and len(years) <= 1:
        year = _two_digit(fiscal.group(1))
        return Period(str(year), year), _rest(text, fiscal.span())
    if len(years) != 1:
        return None, text
    for pattern, order in ((_MONTH_DAY_YEAR, (0, 1, 2)), (_DAY_MONTH_YEAR, (1, 0, 2))):
        match = pattern.search(text)
        if match is None:
            continue
        month, day, year = (match.group(i + 1) for i in order)
        if _YEAR_ENDED.search(text[: match.start()]):
            return Period(year, int(year)), _rest(text, match.span())
        iso = f"{year}-{MONTHS[month.lower()]:02d}-{int(day):02d}"
        return Period(iso, int(year)), _rest(text, match.span())
    match = _ANY_YEAR.search(text)
    assert match is not None
    return Period(match.group(0), int(match.group(0))), _rest(text, match.span())


def _numeric_parts(match: re.Match[str]) -> tuple[int, int, int]:
    """(day, month, year) of a numeric date match."""
    g = match.groups()
    if g[0]:
        return int(g[0]), int(g[1]), int(g[2])
    if g[3]:
        return int(g[4]), int(g[3]), int(g[5])
    return int(g[8]), int(g[7]), int(g[6])


def _rest(text: str, span: tuple[int, int]) -> str:
    """The header without the period and the words that introduce it ("Year ended", "As of")."""
    rest = text[: span[0]] + " " + text[span[1] :]
    rest = _PERIOD_WORDS.sub(" ", rest)
    return " ".join(rest.split()).strip(" ,;:-–—()")


_AS_OF_DATE = re.compile(
    rf"\b(?:as\s+(?:of|at)|at)\s+(?:(\d{{1,2}})\s+({_MONTH})\.?|({_MONTH})\.?\s+(\d{{1,2}}),?)"
    rf"\s+({_YEAR})\b",
    re.I,
)
_MONTH_WORD = re.compile(rf"\b(?:{_MONTH})\b", re.I)


def as_of_date(text: str) -> Period | None:
    """The balance-sheet date a caption states ("As at 31 March 2024", "as of December 31,
    2023"), or None when it states none (or only a period ended: "Year ended 31 March 2024")."""
    match = _AS_OF_DATE.search(" ".join(text.split()))
    if match is None:
        return None
    day, month = match.group(1, 2) if match.group(1) else match.group(4, 3)
    year = int(match.group(5))
    return Period(f"{year}-{MONTHS[month.lower()]:02d}-{int(day):02d}", year)


def names_only_a_year(header: str) -> bool:
    """Whether a column header's period is a bare year: no month, no "ended", "FY", "as at"."""
    return not _MONTH_WORD.search(header) and not _PERIOD_WORDS.search(header)


def same_day(as_of: Period, year: int) -> Period:
    """The as-of date's day and month in `year` (a comparative column's date); 29 February
    falls back to the 28th in a year without it."""
    month_day = as_of.text[4:]
    if month_day == "-02-29" and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        month_day = "-02-28"
    return Period(f"{year}{month_day}", year)
