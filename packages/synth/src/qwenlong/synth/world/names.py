"""Invented names and word pools for the fictional world.

Names are built from our own syllable tables, so no real person, company or place is named and
a model cannot answer from memory. `NameForge` hands out names that are unique across the whole
world (names, aliases and the short forms prose uses), which keeps every surface string pointing
at exactly one entity: the ground truth stays unambiguous and extraction can be scored exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable

ONSETS = (
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
    "br", "dr", "gr", "kr", "tr", "st", "th", "sh", "vr", "sk", "pl", "qu",
)  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ei", "ou", "ia")
CODAS = ("", "", "", "n", "r", "l", "s", "m", "th", "nd", "rk", "st", "x", "v")
GIVEN_ENDINGS = ("", "a", "o", "en", "is", "ia", "el", "an", "ette", "ik")
SURNAME_ENDINGS = ("", "ar", "essa", "ovin", "dal", "ett", "ask", "ori", "mund", "ven")
CITY_ENDINGS = ("", "a", "on", "ia", "ath", "ell", "or", "is", "und", "ova")
COUNTRY_ENDINGS = ("ia", "and", "esh", "ora", "avia", "istan", "ene")
COUNTRY_FORMS = ("Republic of", "Kingdom of", "Federation of", "Commonwealth of")
CITY_EPITHETS = (
    "Amber", "Salt", "Lantern", "Copper", "Heron", "Marble", "Glass", "Willow", "Iron",
    "Violet", "Harbour", "Bell", "Cedar", "Ember", "Silver", "Clock", "Orchard", "Kite",
    "Granite", "Feather", "Tide", "Saffron", "Lark", "Quartz",
)  # fmt: skip
CURRENCY_UNITS = ("crown", "mark", "florin", "talen", "sol", "dinar-vesh", "pell")

INDUSTRIES: dict[str, tuple[str, ...]] = {
    "software": ("Systems", "Software", "Labs", "Digital"),
    "shipping": ("Shipping", "Lines", "Freight"),
    "energy": ("Energy", "Power", "Renewables"),
    "pharmaceuticals": ("Pharma", "Therapeutics", "Biosciences"),
    "banking": ("Bank", "Capital", "Financial"),
    "retail": ("Stores", "Retail", "Markets"),
    "agriculture": ("Agro", "Farms", "Harvest"),
    "construction": ("Builders", "Construction", "Works"),
    "telecommunications": ("Telecom", "Networks", "Communications"),
    "textiles": ("Textiles", "Mills", "Weaving"),
}
"""Industry -> suffixes a company in it may carry in its name."""

INSTITUTION_TYPES: dict[str, tuple[str, ...]] = {
    "public university": ("{} University", "University of {}"),
    "private university": ("{} University", "{} College"),
    "research institute": ("{} Institute of Technology", "{} Research Institute"),
    "academy of arts": ("{} Academy of Arts", "Royal {} Academy"),
    "technical college": ("{} Polytechnic", "{} Technical College"),
}
"""Institution type -> name patterns ("{}" is an invented root word)."""

COMPANY_OCCUPATIONS = (
    "engineer", "accountant", "product designer", "data analyst", "sales director",
    "chemist", "logistics manager", "lawyer", "architect", "marketing manager",
)  # fmt: skip
INSTITUTION_OCCUPATIONS = (
    "professor", "research fellow", "lecturer", "archivist", "laboratory director",
)  # fmt: skip
EVENT_KINDS = ("Summit", "Expo", "Festival", "Symposium", "Forum", "Regatta", "Congress")


def _capitalise(word: str) -> str:
    return word[:1].upper() + word[1:]


def initials(name: str) -> str:
    """Capital letters of the significant words: "Korvath Institute of Technology" -> "KIT"."""
    return "".join(w[0] for w in name.split() if w[:1].isupper())


class NameForge:
    """Seeded source of invented names, unique (case-insensitively) across one world."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def claim(self, name: str) -> bool:
        """Reserve `name` for one entity; False when some entity already uses it."""
        key = name.casefold()
        if key in self.used:
            return False
        self.used.add(key)
        return True

    def _syllables(self, count: int) -> str:
        parts = []
        for i in range(count):
            coda = self.rng.choice(CODAS) if i == count - 1 or self.rng.random() < 0.25 else ""
            parts.append(self.rng.choice(ONSETS) + self.rng.choice(VOWELS) + coda)
        return "".join(parts)

    def _unique(self, make: Callable[[], str]) -> str:
        for _ in range(10_000):
            candidate = make()
            if 3 <= len(candidate) <= 24 and self.claim(candidate):
                return candidate
        raise RuntimeError("name pool exhausted; the world is too large for the syllable tables")

    def root(self, syllables: tuple[int, int] = (2, 2), endings: tuple[str, ...] = ("",)) -> str:
        """A fresh capitalised word, never used before in this world."""
        return self._unique(
            lambda: _capitalise(
                self._syllables(self.rng.randint(*syllables)) + self.rng.choice(endings)
            )
        )

    def person(self) -> tuple[str, str]:
        """(given name, surname); the surname is unique so prose can use it alone."""
        surname = self.root((1, 2), SURNAME_ENDINGS)
        given = _capitalise(
            self._syllables(self.rng.randint(1, 2)) + self.rng.choice(GIVEN_ENDINGS)
        )
        return given, surname

    def nickname(self, given: str) -> str | None:
        """A short affectionate form of a given name, or None when every form is taken."""
        stem = given[: self.rng.randint(2, 4)].rstrip("aeiou") or given[:2]
        for ending in self.rng.sample(("y", "o", "ie", "i", "s", "ka"), 6):
            if self.claim(stem + ending):
                return stem + ending
        return None

    def city(self) -> str:
        return self.root((1, 2), CITY_ENDINGS)

    def country(self) -> str:
        return self.root((1, 2), COUNTRY_ENDINGS)

    def epithet(self) -> str | None:
        """A city nickname ("the Amber City"), or None when all are taken."""
        for word in self.rng.sample(CITY_EPITHETS, len(CITY_EPITHETS)):
            if self.claim(f"the {word} City"):
                return f"the {word} City"
        return None
