"""What the conversations are made of: user requests and the writings that answer them.

Every request asks for one kind of writing (poem, story, note, list, letter, riddle) about one
topic, and always contains the literal phrase "<noun> about <topic>" ("a short poem about
tapirs"). That phrase is the matching rule of the needle question: the k-th "poem about tapirs"
is the k-th user turn whose request contains it, whatever the modifier, speaker or wording
around it. Nouns and topics are single words chosen so that no phrase of one pair occurs inside
another's ("story" is not in "history", no topic is another topic plus letters).

The answers are built from word pools by one composer per kind, so the same kind and topic asked
twice gives two different writings (the needles must differ for "the 2nd poem about tapirs" to
have one right answer). A composer takes a size, in stanzas, sentences, items or clues, so the
length fitter can ask for short writings when a conversation is close to its target length.
All text is produced here; no model writes any of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from qwenlong.core.registry import Registry

TOPICS: tuple[str, ...] = (
    "tapirs", "lighthouses", "budgets", "glaciers", "violins", "lanterns", "otters", "bridges",
    "comets", "orchards", "typewriters", "harbours", "volcanoes", "beetles", "kites",
    "libraries", "ferries", "mushrooms", "telescopes", "deserts", "spreadsheets", "trains",
    "tulips", "whales", "castles", "bakeries", "penguins", "clocks", "meadows", "submarines",
    "pianos", "islands", "foxes", "robots", "rivers", "cathedrals", "bicycles", "hedgehogs",
    "canyons", "umbrellas", "lemons", "satellites", "owls", "teapots", "windmills", "badgers",
    "puzzles", "harvests", "storms", "compasses", "pelicans", "quarries", "marathons",
    "invoices", "greenhouses", "accordions", "icebergs", "vineyards", "chessboards", "beehives",
)  # fmt: skip
"""Subjects of requests: plural nouns, one word each (the composers' grammar assumes both)."""

SPEAKER_NAMES: tuple[str, ...] = (
    "Priya", "Tomas", "Amara", "Jonah", "Mei", "Rafael", "Ingrid", "Kwame", "Sofia", "Declan",
    "Yusuf", "Hana", "Luca", "Noor", "Elena", "Bram", "Aiko", "Mateo", "Freya", "Omar",
)  # fmt: skip
"""Participants who voice the user side of a multi-party conversation."""

SPEAKER_TEMPLATES: tuple[str, ...] = ("{name} asks: {request}", "From {name}: {request}")
"""How a named participant's request is written inside the user turn."""

REQUEST_TEMPLATES: tuple[str, ...] = (
    "write a {modifier} {noun} about {topic}",
    "could you write me a {modifier} {noun} about {topic}?",
    "I would like a {modifier} {noun} about {topic}, please.",
    "please compose a {modifier} {noun} about {topic}.",
    "can I get a {modifier} {noun} about {topic}?",
    "one more thing: a {modifier} {noun} about {topic}.",
)
"""Ways of asking; each keeps "{noun} about {topic}" intact, which the needle question matches."""

ADJECTIVES = (
    "quiet", "golden", "restless", "patient", "silver", "crooked", "gentle", "hollow", "bright",
    "weathered", "distant", "tender", "stubborn", "amber", "pale", "curious", "ancient", "humble",
    "wild", "velvet", "brittle", "steady", "dusky", "clever", "lonely", "careful", "scarlet",
    "sleepy", "honest", "shimmering", "rusty", "modest", "windswept", "faithful", "tangled",
)  # fmt: skip
IMAGES = (
    "river", "lantern", "field", "harbour", "window", "orchard", "mountain", "doorway", "market",
    "chimney", "shoreline", "garden", "valley", "staircase", "bell tower", "meadow", "kitchen",
    "railway", "forest", "courtyard", "attic", "pier", "hillside", "workshop", "snowfield",
    "marketplace", "reef", "cellar", "balcony", "crossroads",
)  # fmt: skip
PLURAL_VERBS = (
    "wander", "gather", "drift", "linger", "whisper", "wait", "gleam", "settle", "travel", "rest",
    "shine", "hum", "tremble", "glide", "return", "listen", "dream", "sway", "murmur", "circle",
)  # fmt: skip
TIMES = (
    "at dawn", "by moonlight", "before the rain", "in late autumn", "after supper",
    "at the turn of the year", "in the blue hour", "when the tide is out", "on market day",
    "through the long winter", "at first frost", "under the noon sun",
)  # fmt: skip
ROLES = (
    "clockmaker", "ferry pilot", "baker", "cartographer", "schoolteacher", "beekeeper",
    "night guard", "librarian", "fisher", "engineer", "gardener", "violin maker", "postal clerk",
)  # fmt: skip
TOWNS = (
    "Marrowby", "Lindqvist Bay", "Oda Hollow", "Pelham Cross", "Sunmere", "Karst Ridge",
    "Vell Harbour", "Tamsin Fen", "Ostrava Point", "Greywick",
)  # fmt: skip
TEAMS = (
    "Finance Team", "Facilities Committee", "Project Leads", "Board of Trustees",
    "Operations Staff", "Research Group", "Planning Office", "Members of the Council",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


@dataclass(frozen=True)
class WritingKind:
    """One kind of requested writing: how it is asked for and how an answer is composed."""

    noun: str
    """The word requests use ("poem"); the needle phrase is "<noun> about <topic>"."""
    modifiers: tuple[str, ...]
    """Adjectives a request may put before the noun; they flavour the request only."""
    sizes: tuple[int, int]
    """Smallest and largest size (stanzas, sentences, items or clues) a composer is given; a
    story's size counts the sentences between its opening and its ending."""
    compose: Callable[[str, int, random.Random], str]
    """(topic, size, rng) -> the writing."""


WRITING_KINDS: Registry[WritingKind] = Registry("writing kind")
"""Kinds of writing a conversation's user turns ask for, by name."""


def _pick(rng: random.Random, pool: tuple[str, ...]) -> str:
    return rng.choice(pool)


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


_POEM_LINES = (
    "{Adj} {topic} {verb} beside the {image}",
    "and {time} the {image} remembers {topic}",
    "I keep a {adj} {image} for the {topic}",
    "where {topic} {verb}, the {image} grows {adj}",
    "O {topic}, {adj} as a {image} {time}",
    "no one counts the {topic} that {verb} {time}",
    "the {adj} {image} leans toward the {topic}",
    "still the {topic} {verb}, {adj} and {adj2}",
    "{time}, a {adj} hush, and {topic}",
    "we walked the {image} and spoke of {topic}",
)


def _poem(topic: str, size: int, rng: random.Random) -> str:
    stanzas = []
    for _ in range(size):
        lines = []
        for template in rng.sample(_POEM_LINES, 4):
            adj, adj2 = rng.sample(ADJECTIVES, 2)
            line = template.format(
                topic=topic,
                adj=adj,
                adj2=adj2,
                Adj=adj.capitalize(),
                image=_pick(rng, IMAGES),
                verb=_pick(rng, PLURAL_VERBS),
                time=_pick(rng, TIMES),
            )
            lines.append(_sentence(line))
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas)


_STORY_MIDDLE = (
    "Every morning {name} counted the {topic} and wrote the number in a {adj} notebook.",
    "One {adj} evening the {topic} were gone, and only a trail toward the {image} remained.",
    "{name} asked the old {role2} about it, who said the {topic} always came back {time}.",
    "The town of {town} laughed at first, then began to help with lanterns and maps.",
    "Near the {image}, {name} found a letter that mentioned the {topic} by name.",
    "It rained for a week, and the {topic} seemed to {verb} closer with every storm.",
    "A child from {town} claimed to have seen the {topic} {verb} by the {image}.",
    "{name} waited {time}, holding a {adj} lantern and a thermos of tea.",
)
_STORY_ENDINGS = (
    "In the end the {topic} returned, and {name} never again doubted the {image}.",
    "From then on, {town} kept a holiday for the {topic}, and {name} told the story each year.",
    "{name} closed the notebook and smiled: some {topic} are meant to wander.",
    "The {topic} stayed, and the {image} was never quite so {adj} again.",
)


def _story(topic: str, size: int, rng: random.Random) -> str:
    fill = {
        "topic": topic,
        "name": _pick(rng, SPEAKER_NAMES),
        "role": _pick(rng, ROLES),
        "role2": _pick(rng, ROLES),
        "town": _pick(rng, TOWNS),
    }

    def render(template: str) -> str:
        return template.format(
            **fill,
            adj=_pick(rng, ADJECTIVES),
            image=_pick(rng, IMAGES),
            verb=_pick(rng, PLURAL_VERBS),
            time=_pick(rng, TIMES),
        )

    opening = render("In {town} there lived a {role} named {name} who cared deeply about {topic}.")
    middle = [render(t) for t in rng.sample(_STORY_MIDDLE, min(size, len(_STORY_MIDDLE)))]
    return " ".join([opening, *middle, render(_pick(rng, _STORY_ENDINGS))])


_NOTE_BODY = (
    "Following {weekday}'s meeting, the review of {topic} has been moved up by one week.",
    "Spending on {topic} exceeded the forecast by {percent} percent last quarter.",
    "Please note that all requests concerning {topic} now require a second signature.",
    "The {adj} draft of the {topic} report is attached for your comments.",
    "We expect to publish revised figures on {topic} before the end of the month.",
    "Any questions about {topic} should be directed to the {team_lower}.",
    "An audit of {topic} is scheduled for {weekday}, beginning at {hour} o'clock.",
    "Staff are reminded that records of {topic} must be kept for seven years.",
)


def _note(topic: str, size: int, rng: random.Random) -> str:
    team = _pick(rng, TEAMS)
    body = [
        template.format(
            topic=topic,
            weekday=_pick(rng, WEEKDAYS),
            percent=rng.randint(3, 40),
            adj=_pick(rng, ("preliminary", "revised", "final", "updated")),
            team_lower=_pick(rng, TEAMS).lower(),
            hour=rng.randint(8, 16),
        )
        for template in rng.sample(_NOTE_BODY, min(size, len(_NOTE_BODY)))
    ]
    closing = f"Please confirm receipt by {_pick(rng, WEEKDAYS)}."
    signer = f"{_pick(rng, SPEAKER_NAMES)} {_pick(rng, ('Hale', 'Okafor', 'Brandt', 'Sato'))}"
    return f"To the {team},\n\n{' '.join(body)} {closing}\n\nKind regards,\n{signer}"


_LIST_ITEMS = (
    "{Adj} {topic} are easiest to notice {time}.",
    "Keep a {adj} {image} in mind when thinking about {topic}.",
    "Most {topic} {verb} more than people expect.",
    "Never judge {topic} by the {image} they come from.",
    "Old {topic} and new {topic} rarely {verb} together.",
    "A {adj} {image} is the classic setting for {topic}.",
    "Counting {topic} {time} gives the most honest number.",
    "People in {town} say {topic} bring luck to a {image}.",
    "The best books on {topic} are {adj} and short.",
    "Ask a {role} about {topic} and expect a long answer.",
)
_LIST_TITLES = ("things to know", "facts", "notes", "observations", "reasons to care")


def _list(topic: str, size: int, rng: random.Random) -> str:
    items = []
    for number, template in enumerate(rng.sample(_LIST_ITEMS, min(size, len(_LIST_ITEMS))), 1):
        adj = _pick(rng, ADJECTIVES)
        item = template.format(
            topic=topic,
            adj=adj,
            Adj=adj.capitalize(),
            image=_pick(rng, IMAGES),
            verb=_pick(rng, PLURAL_VERBS),
            time=_pick(rng, TIMES),
            town=_pick(rng, TOWNS),
            role=_pick(rng, ROLES),
        )
        items.append(f"{number}. {item}")
    title = f"{len(items)} {_pick(rng, _LIST_TITLES)} about {topic}:"
    return "\n".join([title, *items])


_LETTER_LINES = (
    "I have been thinking about {topic} ever since we walked past the {image} together.",
    "You would laugh: I bought a {adj} book about {topic} and read it in one sitting.",
    "The weather here is {adj}, which suits the {topic} perfectly.",
    "Do you remember the {topic} we saw {time}? I still tell people about them.",
    "My neighbour, a retired {role}, claims to know everything about {topic}.",
    "Write back soon and tell me whether the {topic} in {town} are as I remember.",
    "I found an old photograph of {topic} near the {image} and thought of you.",
)


def _letter(topic: str, size: int, rng: random.Random) -> str:
    lines = [
        template.format(
            topic=topic,
            adj=_pick(rng, ADJECTIVES),
            image=_pick(rng, IMAGES),
            time=_pick(rng, TIMES),
            role=_pick(rng, ROLES),
            town=_pick(rng, TOWNS),
        )
        for template in rng.sample(_LETTER_LINES, min(size, len(_LETTER_LINES)))
    ]
    to, sender = rng.sample(SPEAKER_NAMES, 2)
    return f"Dear {to},\n\n{' '.join(lines)}\n\nWarmly,\n{sender}"


_RIDDLE_CLUES = (
    "We {verb} {time} but never leave the {image}.",
    "Some call us {adj}, others call us {adj2}.",
    "A {role} knows us well, a child knows us better.",
    "We are found near a {adj} {image}, in twos or in hundreds.",
    "Give us a {image} and we will {verb} until morning.",
    "We have no voice, yet every {role} in {town} has a story about us.",
)


def _riddle(topic: str, size: int, rng: random.Random) -> str:
    clues = []
    for template in rng.sample(_RIDDLE_CLUES, min(size, len(_RIDDLE_CLUES))):
        adj, adj2 = rng.sample(ADJECTIVES, 2)
        clues.append(
            template.format(
                adj=adj,
                adj2=adj2,
                image=_pick(rng, IMAGES),
                verb=_pick(rng, PLURAL_VERBS),
                time=_pick(rng, TIMES),
                role=_pick(rng, ROLES),
                town=_pick(rng, TOWNS),
            )
        )
    return "\n".join([*clues, "What are we?", f"Answer: {topic}."])


WRITING_KINDS.add("poem", WritingKind("poem", ("short", "little", "quiet", "new"), (1, 4), _poem))
WRITING_KINDS.add("story", WritingKind("story", ("short", "little", "brief"), (0, 6), _story))
WRITING_KINDS.add("note", WritingKind("note", ("formal", "short", "brief"), (1, 5), _note))
WRITING_KINDS.add("list", WritingKind("list", ("short", "quick", "handy"), (2, 9), _list))
WRITING_KINDS.add("letter", WritingKind("letter", ("short", "warm", "friendly"), (1, 5), _letter))
WRITING_KINDS.add("riddle", WritingKind("riddle", ("short", "little", "clever"), (1, 5), _riddle))


def needle_phrase(kind: WritingKind, topic: str) -> str:
    """The phrase a request for `kind` about `topic` always contains, and the question names."""
    return f"{kind.noun} about {topic}"


def write_request(
    kind: WritingKind, topic: str, rng: random.Random, speaker: str | None = None
) -> str:
    """A user request for `kind` about `topic`, voiced by `speaker` when the chat is multi-party."""
    request = _pick(rng, REQUEST_TEMPLATES).format(
        modifier=_pick(rng, kind.modifiers), noun=kind.noun, topic=topic
    )
    if speaker is None:
        return _sentence(request)
    return _pick(rng, SPEAKER_TEMPLATES).format(name=speaker, request=request)


def write_answer(kind: WritingKind, topic: str, rng: random.Random, size: int | None = None) -> str:
    """The assistant's writing for a request; `size` None draws one from the kind's range."""
    low, high = kind.sizes
    return kind.compose(topic, rng.randint(low, high) if size is None else size, rng)
