"""Sentence templates and filler pools for the world's prose (all our own wording).

Slots: `{s}` the subject (name, short form or pronoun), `{sp}` its possessive, `{pos}` / `{obj}`
possessive and object pronouns, `{<relation>}` the fact's tail as written, `{<relation>_date}` the
year of a dated fact. A template states exactly the facts whose relation slots it uses, and the
fact's date only when it uses the date slot; the writers record those triples as ground truth.
Several templates per fact, some matching the rule extractor's fixed patterns and some not, so
prose extraction is a real task with measurable recall.
"""

from __future__ import annotations

FACT_TEMPLATES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("birth_place", "birth_date"): (
        "{s} was born in {birth_place} on {birth_date}.",
        "{s} was born on {birth_date} in {birth_place}.",
        "Born in {birth_place} on {birth_date}, {s} spent a quiet childhood there.",
    ),
    ("birth_place",): (
        "{s} was born in {birth_place}.",
        "{s} is a native of {birth_place}.",
        "{s} grew up in {birth_place}, the city of {pos} birth.",
    ),
    ("birth_date",): (
        "{s} was born on {birth_date}.",
        "{sp} date of birth is {birth_date}.",
    ),
    ("occupation",): (
        "{s} works as {occupation}.",
        "By profession, {s} is {occupation}.",
        "{s} trained as {occupation}.",
    ),
    ("employer",): (
        "{s} works for {employer}.",
        "{s} has worked for {employer} since {employer_date}.",
        "{s} joined {employer} in {employer_date}.",
        "Since {employer_date}, {s} has been employed at {employer}.",
    ),
    ("education",): (
        "{s} studied at {education}, graduating in {education_date}.",
        "{s} graduated from {education} in {education_date}.",
        "{s} is a graduate of {education}.",
    ),
    ("spouse",): (
        "{s} is married to {spouse}.",
        "{s} married {spouse} in {spouse_date}.",
        "In {spouse_date}, {s} and {spouse} were married.",
    ),
    ("residence",): (
        "{s} lives in {residence}.",
        "{s} currently resides in {residence}.",
        "These days {s} makes {pos} home in {residence}.",
    ),
    ("founded", "founder"): (
        "{s} was founded in {founded} by {founder}.",
        "{s} was founded by {founder} in {founded}.",
        "{founder} founded {s} in {founded}.",
        "{founder} established {s} in {founded}.",
    ),
    ("founded",): (
        "{s} was founded in {founded}.",
        "{s} traces {pos} origins to {founded}.",
        "Established in {founded}, {s} has changed considerably since.",
    ),
    ("founder",): (
        "{s} was founded by {founder}.",
        "{founder} is the founder of {s}.",
    ),
    ("headquarters",): (
        "{s} is headquartered in {headquarters}.",
        "{s} has its headquarters in {headquarters}.",
        "The head office of {s} is located in {headquarters}.",
        "{s} is based in {headquarters}.",
    ),
    ("industry",): (
        "{s} operates in the {industry} sector.",
        "{s} is a {industry} business.",
    ),
    ("type",): (
        "{s} is {type}.",
        "Officially, {s} is classed as {type}.",
    ),
    ("parent",): (
        "{s} is a subsidiary of {parent}.",
        "{parent} owns {s}.",
        "{s} belongs to the group led by {parent}.",
    ),
    ("ceo",): (
        "{ceo} has led {s} as chief executive since {ceo_date}.",
        "The chief executive of {s} is {ceo}.",
        "Since {ceo_date}, {s} has been run by {ceo}.",
    ),
    ("students",): (
        "{s} enrols about {students} students.",
        "Some {students} students attend {s}.",
    ),
    ("country",): (
        "{s} is a city in {country}.",
        "{s} lies in {country}.",
        "{s} is one of the cities of {country}.",
    ),
    ("population",): (
        "{s} has a population of {population}.",
        "About {population} people live in {s}.",
        "The population of {s} stands at {population}.",
    ),
    ("elevation",): (
        "{s} sits at an elevation of {elevation}.",
        "The centre of {s} lies {elevation} above sea level.",
    ),
    ("capital",): (
        "The capital of {s} is {capital}.",
        "{capital} is the capital of {s}.",
        "{s} is governed from {capital}.",
    ),
    ("currency",): (
        "The currency of {s} is the {currency}.",
        "Prices in {s} are quoted in the {currency}.",
        "{s} uses the {currency} as {pos} currency.",
    ),
    ("alias",): (
        "{s} is also known as {alias}.",
        "{s} is often called {alias}.",
    ),
    ("location", "date"): (
        "{s} was held in {location} in {date}.",
        "In {date}, {s} took place in {location}.",
    ),
    ("location",): (
        "{s} was held in {location}.",
        "The venue of {s} was in {location}.",
    ),
    ("date",): (
        "{s} took place in {date}.",
        "{s} was held in {date}.",
    ),
    ("organiser",): (
        "{s} was organised by {organiser}.",
        "{organiser} organised {s}.",
        "{organiser} hosted {s}.",
    ),
    ("participants",): (
        "{participants} took part in {s}.",
        "Among the participants of {s} was {participants}.",
        "{participants} attended {s} as a speaker.",
    ),
    ("attendance",): (
        "{s} drew about {attendance} visitors.",
        "Some {attendance} people attended {s}.",
    ),
}
"""Relation group -> templates. Groups of two are tried first when an entity has both facts."""

METRIC_TEMPLATES: dict[str, tuple[str, ...]] = {
    "money": (
        "{s} reported {metric} of USD {value} million in {year}.",
        "In {year}, {sp} {metric} came to USD {value} million.",
        "{sp} {metric} for {year} was USD {value} million.",
    ),
    "persons": (
        "{s} had {value} {metric} in {year}.",
        "In {year}, {sp} {metric} numbered {value}.",
    ),
}
"""Financial statements in prose, by unit family; `{metric}` is the metric label in lower case."""

FILLERS: dict[str, tuple[str, ...]] = {
    "person": (
        "{s} is known among colleagues for a dry sense of humour.",
        "Little has been published about {pos} early schooling.",
        "{s} rarely gives interviews.",
        "In {pos} spare time, {s} collects old maps.",
        "Former classmates describe {obj} as patient and exacting.",
        "{s} has written a handful of essays on public transport.",
        "A keen cyclist, {s} commutes by bicycle in most seasons.",
        "{s} has spoken at several trade meetings over the years.",
        "Friends say {s} keeps a meticulous diary.",
        "{s} prefers long walks to crowded parties.",
    ),
    "organisation": (
        "{s} publishes a sustainability statement every spring.",
        "Its staff magazine has appeared monthly for decades.",
        "{s} has repeatedly reorganised its regional offices.",
        "Critics have questioned the pace of {pos} expansion.",
        "{s} sponsors a small scholarship programme.",
        "Internal archives describe several difficult years.",
        "{s} keeps a visitor centre open on weekdays.",
        "Its logo has been redesigned three times.",
        "{s} runs an apprenticeship scheme for school leavers.",
    ),
    "place": (
        "{s} is known for its covered markets.",
        "Summers in {s} are warm and mostly dry.",
        "A narrow-gauge railway once served {s}.",
        "The old quarter of {s} is popular with walkers.",
        "Local festivals in {s} centre on music and food.",
        "Several bridges cross the river that runs through {s}.",
        "The regional museum holds finds from the area around {s}.",
        "Fishing was once a mainstay of the local economy.",
    ),
    "event": (
        "Tickets for {s} sold out within days.",
        "The programme of {s} mixed lectures with exhibitions.",
        "Press coverage of {s} was broadly favourable.",
        "Rain disrupted part of the outdoor schedule.",
        "A closing reception followed the final session.",
        "Volunteers handled most of the logistics of {s}.",
        "Recordings of several sessions circulate among attendees.",
    ),
}
"""Fact-free sentences per entity kind: they pad articles without stating anything checkable."""

SECTION_TITLES: dict[str, tuple[str, ...]] = {
    "person": ("Early life", "Career", "Personal life", "Later years"),
    "organisation": ("History", "Operations", "Governance", "Outlook"),
    "place": ("Geography", "History", "Economy", "Culture"),
    "event": ("Background", "Programme", "Reception"),
}
"""Headings articles may use between paragraphs (written as "== Title ==")."""
