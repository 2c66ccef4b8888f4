"""What a row or column label says about the unit of its figures, beyond the words of a unit.

A table's "(in millions, except per share data)" and its "$" cover most of its figures; a
careful reader sets them aside where the label says the figure is something else:

- per share or per unit: "Diluted earnings per share", "Exercise price", "Dividends per share",
  "TCE rate per day" never take the table's scale;
- a count: a label whose head counts things ("Weighted-average shares outstanding", "Shares
  used in per share calculations", "Options outstanding", "Number of employees") takes no
  currency. Mentioning shares is not counting them: "Share-based compensation", "Proceeds from
  exercise of stock options", "Share of profit of joint ventures", "Called up share capital"
  and "Share premium" are amounts, told by an amount word (proceeds, compensation, capital,
  premium, profit, ...) or by "share" modifying the word after it ("share-based", "share of").
  Counted things beyond shares ("homes", "passengers", "vessel operating days", "seat miles")
  are counts too, and a money word modifying them counts them ("Revenue passengers");
- named in the except clause: "(in millions, except RevPAR and ADR)" takes the scale off the
  rows that name "RevPAR" or "ADR"; a per-unit amount keeps its currency. An item naming a kind
  of row ("operating data", "customer counts") names no label's words: "Vessel operating
  expenses" is not operating data; such a clause sets every count apart (`names_counts`).

A label's head ends at its first comma or semicolon: "Common stock, $0.01 par value; 10,000
shares authorized" is an amount of stock, not a count of shares; and a "per share" phrase ends
the part that can name a count ("Net income per share" counts nothing, "Shares used in per
share calculations" counts shares).
"""

from __future__ import annotations

import re

PER_UNIT = re.compile(
    r"\bper\s+(?:basic\s+|diluted\s+|common\s+|ordinary\s+)?(?:share|unit|option|ads|adr)\b|"
    r"\bper\s+(?:day|night|diem)\b|\bdaily\s+(?:rates?|charter\s+rates?)\b|"
    r"\beps\b|\b(?:exercise|share|stock|strike|grant)\s+price\b|\bprice per\b|"
    r"\bfair value per\b|\bgrant[- ]date fair value\b|\bdividends? per\b|\bwaep\b",
    re.IGNORECASE,
)
"""Per-share amounts, prices and daily rates ("TCE rate per day", "Average daily rate"): a
table's "in millions" never covers them."""

COUNT_NOUNS = re.compile(
    r"\b(?:shares|options|awards|units|rsus|psus|employees|headcount|staff|workforce|people|"
    r"persons|hires|stores|customers|subscribers|users|members|households|homes|departures|"
    r"flights|passengers|restaurants|hotels|branches|locations|days|hours|miles|gallons|"
    r"barrels)\b",
    re.IGNORECASE,
)
"""Things a row may count or measure in other units than money (plural: "share" and "option"
alone modify another word). Not "vessels" or "aircraft": "Vessels, net" is property."""

ALWAYS_COUNTS = re.compile(
    r"\bnumber of\b|\bratio\b|\((?:in\s+)?(?:years|months|days)\)", re.IGNORECASE
)
"""Labels that state a count or pure number outright, whatever else they say."""

AMOUNT_WORDS = re.compile(
    r"\b(?:proceeds|payments?|paid|costs?|expenses?|compensation|capital|premiums?|reserves?|"
    r"profits?|income|dividends?|value|amounts?|cash|tax(?:es)?|settlements?|fees?|revenues?|"
    r"sales|earnings|consideration|gains?|charges?|remuneration|salaries|wages|purchases?|"
    r"repurchases?|buybacks?|issuance|results|acquisitions?|disposals?|sale|redemptions?)\b",
    re.IGNORECASE,
)
"""Words that make a label an amount of money even when it mentions shares or options."""

SHARE_COUNTS = re.compile(r"\b(?:shares?|options?|awards|units|rsus?|psus?)\b", re.IGNORECASE)
"""Count nouns an except clause may name ("except share and per share data")."""

_WORDS = re.compile(rf"(?:{AMOUNT_WORDS.pattern})|(?:{COUNT_NOUNS.pattern})", re.IGNORECASE)
_MODIFIES = re.compile(
    rf"\s*-|['’]|\s+(?:{AMOUNT_WORDS.pattern})|"
    r"\s+(?:under\s+construction|held\s+for\s+(?:sale|use)|in\s+progress)\b",
    re.IGNORECASE,
)
"""After a count noun: it modifies the next word ("staff costs", "units-of-production",
"members' equity") or names assets in a state ("Homes under construction" is inventory)."""
_NEXT_WORD = re.compile(r"\s+(\w+)")

_HEAD = re.compile(r"[,;]")

_EXCEPTION_ITEMS = re.compile(r"[,;/&]|\band\b|\bor\b", re.IGNORECASE)
_CATEGORY = re.compile(r"\b(?:data|statistics|information|metrics|counts?)\s*$", re.IGNORECASE)
"""An except-clause item that names a kind of row, not words of a label: "operating data" does
not except "Vessel operating expenses"."""
COUNT_CLAUSE = re.compile(
    r"\bcounts?\b|\bnumbers?\s+of\b|\b(?:operating|operational|statistical|non-?financial)\s+"
    r"(?:data|statistics|metrics|information)\b",
    re.IGNORECASE,
)
"""Except-clause words that set counts apart from the table's scale: "(in thousands, except
customer counts and percentages)", "(..., except per share, daily rate and operating data)"."""
_EXCEPTION_FILLER = frozenset(
    {"data", "amounts", "amount", "figures", "information", "items", "number", "of", "the",
     "as", "where", "otherwise", "noted", "indicated", "stated", "shown", "specified", "in",
     "which", "are", "is"}
)  # fmt: skip
"""Words of an except clause that name no row ("except per share data", "except as noted")."""


def label_head(label: str) -> str:
    """The label up to its first comma or semicolon."""
    return _HEAD.split(label, maxsplit=1)[0]


def label_kind(label: str) -> str:
    """ "count", "per unit", "amount" or "" (the label does not say) for one label.

    The first amount word or counting noun of the head decides ("Proceeds from exercise of
    stock options" is an amount, "Shares withheld for taxes" a count); a per-unit phrase
    ("per share", "exercise price") makes the figure per unit unless a count comes before it.
    """
    per = PER_UNIT.search(label)
    head = label_head(label[: per.start()] if per else label)
    if ALWAYS_COUNTS.search(head):
        return "count"
    for match in _WORDS.finditer(head):
        if AMOUNT_WORDS.fullmatch(match.group(0)):
            if _modifies_a_count(head, match.end()):
                continue
            return "per unit" if per else "amount"
        if not _MODIFIES.match(head, match.end()):
            return "count"
    return "per unit" if per else ""


def _modifies_a_count(head: str, end: int) -> bool:
    """Whether the amount word ending at `end` modifies a counted noun right after it:
    "Revenue passengers" and "Revenue passenger miles" count passengers and miles."""
    following = _NEXT_WORD.match(head, end)
    if following is None:
        return False
    word = following.group(1)
    return bool(COUNT_NOUNS.fullmatch(word) or COUNT_NOUNS.fullmatch(f"{word}s"))


def figure_kind(column_label: str, row_label: str) -> str:
    """What a figure is by its labels: the column's label decides when it says ("Number of
    Options", "Weighted-Average Exercise Price", "Amount"), else the row's."""
    return label_kind(column_label) or label_kind(row_label)


def exception_items(exceptions: str) -> list[str]:
    """The rows an except clause names besides per-share figures and share counts (which
    `figure_kind` covers): "revpar and adr" -> ["revpar", "adr"]."""
    items = []
    for piece in _EXCEPTION_ITEMS.split(PER_UNIT.sub(" ", exceptions)):
        if _CATEGORY.search(piece):
            continue
        words = [w for w in piece.lower().split() if w not in _EXCEPTION_FILLER]
        item = " ".join(words).strip(" .:")
        if item and not SHARE_COUNTS.fullmatch(item) and item not in ("per", "share"):
            items.append(item)
    return items


def names_counts(exceptions: str) -> bool:
    """Whether an except clause sets every count apart from the table's scale (`COUNT_CLAUSE`);
    share counts named alone ("except share data") are `SHARE_COUNTS`' case."""
    return bool(COUNT_CLAUSE.search(exceptions))


def is_excepted(label: str, exceptions: str) -> bool:
    """Whether an except clause names this row ("(in millions, except RevPAR and ADR)" and
    "Average daily rate (ADR)"); a plural item names its singular too ("ratios", "Current
    ratio")."""
    head = label_head(label)
    for item in exception_items(exceptions):
        forms = {item, item[:-1]} if item.endswith("s") and len(item) > 3 else {item}
        if any(re.search(rf"(?<!\w){re.escape(form)}(?!\w)", head, re.I) for form in forms):
            return True
    return False
