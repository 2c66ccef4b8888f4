"""The world's ground-truth graph: entities with consistent attributes and dated relations.

Consistency rules (checked by tests): nobody is employed before age 20 or before the employer
was founded; graduation follows birth by 21-25 years and the institution's founding; founders
are at least 22 when they found a company; spouses marry after both are 20; subsidiaries are
younger than their parents; events happen after their organiser is founded and only adults
take part; nothing happens after the world's present (`report_last_year`).
"""

from __future__ import annotations

import re

from qwenlong.core.seeding import derive_rng
from qwenlong.synth.world.config import WorldConfig
from qwenlong.synth.world.model import Entity, Fact
from qwenlong.synth.world.names import (
    COMPANY_OCCUPATIONS,
    COUNTRY_FORMS,
    CURRENCY_UNITS,
    EVENT_KINDS,
    INDUSTRIES,
    INSTITUTION_OCCUPATIONS,
    INSTITUTION_TYPES,
    NameForge,
    initials,
)

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _SLUG.sub("-", name.lower()).strip("-")


class GraphBuilder:
    """Draws entities and facts in a fixed order from one seeded RNG."""

    def __init__(self, config: WorldConfig) -> None:
        self.cfg = config
        self.rng = derive_rng(config.seed, "graph")
        self.forge = NameForge(self.rng)
        self.now = config.report_last_year
        self.entities: list[Entity] = []
        self.facts: list[Fact] = []
        self.year: dict[str, int] = {}
        """Entity id -> birth or founding year, for the consistency rules."""

    def add_entity(
        self, kind: str, subtype: str, name: str, aliases: list[str], pronoun: str = "it"
    ) -> Entity:
        entity = Entity(f"{kind}-{slugify(name)}", kind, subtype, name, aliases, pronoun)
        self.entities.append(entity)
        for alias in aliases:
            self.fact(entity.id, "alias", alias)
        return entity

    def fact(self, head: str, relation: str, tail: str, date: int | None = None) -> None:
        self.facts.append(Fact(head, relation, tail, None if date is None else str(date)))

    def build(self) -> tuple[list[Entity], list[Fact]]:
        countries = self._countries()
        cities = self._cities(countries)
        people = self._people(cities)
        institutions, companies = self._organisations(people, cities)
        self._employment(people, institutions, companies)
        self._marriages(people)
        self._events(people, institutions + companies, cities)
        return self.entities, self.facts

    def _countries(self) -> list[Entity]:
        countries = []
        for _ in range(self.cfg.n_countries):
            name = self.forge.country()
            formal = f"{self.rng.choice(COUNTRY_FORMS)} {name}"
            aliases = [formal] if self.forge.claim(formal) else []
            countries.append(self.add_entity("place", "country", name, aliases))
        return countries

    def _cities(self, countries: list[Entity]) -> list[Entity]:
        cities = []
        population: dict[str, int] = {c.id: 0 for c in countries}
        for i in range(self.cfg.n_places):
            name = self.forge.city()
            epithet = self.forge.epithet() if self.rng.random() < 0.4 else None
            city = self.add_entity("place", "city", name, [epithet] if epithet else [])
            country = countries[i] if i < len(countries) else self.rng.choice(countries)
            if i < len(countries):
                self.fact(country.id, "capital", city.id)
            people = round(int(self.rng.lognormvariate(11.5, 1.0)) + 2000, -1)
            population[country.id] += people
            founded = self.rng.randint(800, 1900)
            self.year[city.id] = founded
            self.fact(city.id, "country", country.id)
            self.fact(city.id, "population", str(people))
            self.fact(city.id, "founded", str(founded))
            self.fact(city.id, "elevation", f"{self.rng.randint(2, 1800)} metres")
            cities.append(city)
        for country in countries:
            total = round(max(population[country.id], 50_000) * self.rng.uniform(3, 8), -3)
            self.fact(country.id, "founded", str(self.rng.randint(1700, 1950)))
            self.fact(country.id, "population", str(int(total)))
            self.fact(
                country.id,
                "currency",
                f"{self.forge.root((1, 2))} {self.rng.choice(CURRENCY_UNITS)}",
            )
        return cities

    def _people(self, cities: list[Entity]) -> list[Entity]:
        people = []
        for _ in range(self.cfg.n_people):
            given, surname = self.forge.person()
            name = f"{given} {surname}"
            if not self.forge.claim(name):
                continue
            aliases = [surname]
            if self.rng.random() < 0.4 and (nick := self.forge.nickname(given)):
                aliases.append(nick)
            person = self.add_entity("person", "", name, aliases, self.rng.choice(("he", "she")))
            born = self.rng.randint(1935, self.now - 22)
            self.year[person.id] = born
            month, day = self.rng.randint(1, 12), self.rng.randint(1, 28)
            self.fact(person.id, "birth_date", f"{born:04d}-{month:02d}-{day:02d}")
            self.fact(person.id, "birth_place", self.rng.choice(cities).id)
            if self.rng.random() < 0.7:
                self.fact(person.id, "residence", self.rng.choice(cities).id)
            people.append(person)
        return people

    def _organisations(
        self, people: list[Entity], cities: list[Entity]
    ) -> tuple[list[Entity], list[Entity]]:
        n = self.cfg.n_organisations
        n_inst = min(n - 1, max(1, round(n * self.cfg.institution_fraction)))
        institutions = [self._institution(cities) for _ in range(n_inst)]
        companies = [self._company(people, cities) for _ in range(n - n_inst)]
        for company in companies:
            older = [c for c in companies if self.year[c.id] < self.year[company.id]]
            if older and self.rng.random() < self.cfg.parent_fraction:
                self.fact(company.id, "parent", self.rng.choice(older).id)
        return institutions, companies

    def _institution(self, cities: list[Entity]) -> Entity:
        kind = self.rng.choice(list(INSTITUTION_TYPES))
        pattern = self.rng.choice(INSTITUTION_TYPES[kind])
        name = pattern.format(self.forge.root((2, 2)))
        while not self.forge.claim(name):
            name = pattern.format(self.forge.root((2, 2)))
        short = initials(name)
        aliases = [short] if len(short) >= 3 and self.forge.claim(short) else []
        inst = self.add_entity("organisation", "institution", name, aliases)
        founded = self.rng.randint(1700, 1960)
        self.year[inst.id] = founded
        self.fact(inst.id, "type", kind)
        self.fact(inst.id, "founded", str(founded))
        self.fact(inst.id, "headquarters", self.rng.choice(cities).id)
        self.fact(inst.id, "students", str(self.rng.randint(20, 400) * 100))
        return inst

    def _company(self, people: list[Entity], cities: list[Entity]) -> Entity:
        industry = self.rng.choice(list(INDUSTRIES))
        roots = [self.forge.root((2, 2))]
        if self.rng.random() < 0.3:
            roots.append(self.forge.root((1, 1), ("", "ar", "en", "is")))
        name = f"{' '.join(roots)} {self.rng.choice(INDUSTRIES[industry])}"
        while not self.forge.claim(name):
            name = f"{name} Group"
        if len(roots) == 1:
            aliases = roots  # the root word is already reserved for this company
        else:
            short = initials(name)
            aliases = [short] if self.forge.claim(short) else []
        company = self.add_entity("organisation", "company", name, aliases)
        latest = self.cfg.report_first_year - 2
        founders = [p for p in people if self.year[p.id] + 22 <= latest]
        if founders:
            founder = self.rng.choice(founders)
            born = self.year[founder.id]
            founded = self.rng.randint(max(1900, born + 22), min(born + 60, latest))
        else:
            founder, founded = None, self.rng.randint(1950, latest)
        self.year[company.id] = founded
        self.fact(company.id, "industry", industry)
        self.fact(company.id, "founded", str(founded))
        if founder is not None:
            self.fact(company.id, "founder", founder.id)
        self.fact(company.id, "headquarters", self.rng.choice(cities).id)
        return company

    def _employment(
        self, people: list[Entity], institutions: list[Entity], companies: list[Entity]
    ) -> None:
        """Education, one employer per person (every organisation gets staff first), CEOs.

        Every organisation is founded at least two years before the present and everyone is
        at least 22, so each person's earliest start year is never after the present.
        """
        started: dict[str, int] = {}
        for person in people:
            born = self.year[person.id]
            graduated = born + self.rng.randint(21, 25)
            schools = [i for i in institutions if self.year[i.id] <= graduated]
            if schools and graduated <= self.now and self.rng.random() < 0.85:
                self.fact(person.id, "education", self.rng.choice(schools).id, graduated)
                started[person.id] = graduated
        orgs = institutions + companies
        order = self.rng.sample(people, len(people))
        staff: dict[str, list[Entity]] = {o.id: [] for o in orgs}
        for i, person in enumerate(order):
            if i < len(orgs):
                org = orgs[i]
            else:
                org = self.rng.choice(companies if self.rng.random() < 0.75 else institutions)
            earliest = max(self.year[person.id] + 20, self.year[org.id], started.get(person.id, 0))
            start = self.rng.randint(earliest, self.now)  # earliest <= now: see the docstring
            pool = INSTITUTION_OCCUPATIONS if org.subtype == "institution" else COMPANY_OCCUPATIONS
            staff[org.id].append(person)
            started[person.id] = start
            ceo = org.subtype == "company" and len(staff[org.id]) == 1
            occupation = "chief executive" if ceo else self.rng.choice(pool)
            self.fact(person.id, "occupation", occupation)
            self.fact(person.id, "employer", org.id, start)
            if ceo:
                self.fact(org.id, "ceo", person.id, self.rng.randint(start, self.now))

    def _marriages(self, people: list[Entity]) -> None:
        pairs = int(len(people) * self.cfg.spouse_fraction) // 2
        order = self.rng.sample(people, len(people))
        for a, b in zip(order[0 : 2 * pairs : 2], order[1 : 2 * pairs : 2], strict=True):
            earliest = max(self.year[a.id], self.year[b.id]) + 20
            if earliest > self.now:
                continue
            year = self.rng.randint(earliest, self.now)
            self.fact(a.id, "spouse", b.id, year)
            self.fact(b.id, "spouse", a.id, year)

    def _events(self, people: list[Entity], orgs: list[Entity], cities: list[Entity]) -> None:
        for _ in range(self.cfg.n_events):
            kind = self.rng.choice(EVENT_KINDS)
            name = f"{self.forge.root((2, 2))} {kind}"
            if not self.forge.claim(name):
                continue
            organiser = self.rng.choice(orgs)
            year = self.rng.randint(max(self.year[organiser.id] + 1, 1960), self.now)
            adults = [p for p in people if self.year[p.id] + 18 <= year]
            event = self.add_entity("event", kind.lower(), name, [])
            self.year[event.id] = year
            self.fact(event.id, "date", str(year))
            self.fact(event.id, "location", self.rng.choice(cities).id)
            self.fact(event.id, "organiser", organiser.id)
            for person in self.rng.sample(adults, min(len(adults), self.rng.randint(2, 4))):
                self.fact(event.id, "participants", person.id)
            self.fact(event.id, "attendance", str(self.rng.randint(4, 500) * 100))
