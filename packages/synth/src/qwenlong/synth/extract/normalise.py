"""Canonical forms shared by triple extractors, so triples from any source can be merged.

Relations: lower case, words joined by underscores, "&" and apostrophes dropped, then common
synonyms mapped onto one label ("place_of_birth" and "birthplace" become "birth_place").
Literal values: dates in ISO form, numbers without digit grouping; everything else as written.
"""

from __future__ import annotations

import re

from qwenlong.core.records import Document

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_MONTH = "|".join(MONTHS)
DATE_RE = re.compile(
    rf"\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}} (?:{_MONTH}) \d{{4}}|(?:{_MONTH}) \d{{1,2}}, \d{{4}}"
)
"""Dates the extractors recognise: ISO, "12 April 1961", "April 12, 1961"."""

_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_LITERAL = re.compile(r"-?\d")
_NON_WORD = re.compile(r"[^a-z0-9]+")

RELATION_SYNONYMS: dict[str, str] = {
    "birthplace": "birth_place", "place_of_birth": "birth_place", "born_in": "birth_place",
    "date_of_birth": "birth_date", "born": "birth_date", "born_on": "birth_date",
    "alma_mater": "education", "educated_at": "education", "spouses": "spouse",
    "partner": "spouse", "married_to": "spouse", "employers": "employer", "works_for": "employer",
    "hq": "headquarters", "headquarters_location": "headquarters", "headquartered_in": "headquarters",
    "founders": "founder", "founded_by": "founder", "foundation": "founded",
    "established": "founded", "founding_date": "founded", "other_names": "alias",
    "nickname": "alias", "abbreviation": "alias", "aka": "alias", "also_known_as": "alias",
    "organizer": "organiser", "organizers": "organiser", "organisers": "organiser",
    "organised_by": "organiser", "organized_by": "organiser", "venue": "location",
    "participant": "participants", "population_total": "population", "parent_company": "parent",
    "parent_organization": "parent", "parent_organisation": "parent", "chief_executive": "ceo",
    "lives_in": "residence", "residence_place": "residence", "capital_city": "capital",
}  # fmt: skip
"""Normalised label -> the canonical label (the fictional world's relation names)."""


def normalise_relation(label: str) -> str:
    """ "Place of birth" -> "birth_place"; "R&D spend" -> "rd_spend"; "Born in" -> "birth_place"."""
    key = re.sub(r"['’&.]", "", label.strip().lower())
    key = _NON_WORD.sub("_", key).strip("_")
    return RELATION_SYNONYMS.get(key, key)


def normalise_date(text: str) -> str | None:
    """ISO form of a recognised date, else None."""
    text = text.strip()
    if not DATE_RE.fullmatch(text):
        return None
    if text[4:5] == "-":
        return text
    words = text.replace(",", "").split()
    if words[0].isdigit():
        day, month, year = words
    else:
        month, day, year = words
    return f"{year}-{MONTHS.index(month) + 1:02d}-{int(day):02d}"


def normalise_value(text: str) -> str:
    """A tail in canonical form: ISO dates, ungrouped numbers, single spaces."""
    text = " ".join(text.split())
    if (date := normalise_date(text)) is not None:
        return date
    head, space, rest = text.partition(" ")
    if _GROUPED.fullmatch(head):
        return head.replace(",", "") + space + rest
    return text


def is_literal(tail: str) -> bool:
    """Whether a canonical tail is a value (date, year, number, quantity) rather than a name."""
    return bool(_LITERAL.match(tail))


def subject_of(doc: Document) -> str:
    """What a document is about: its `subject` meta field, else its title (may be empty)."""
    return doc.meta.get("subject") or doc.title
