"""Relation labels: normalisation, the synonym table, similarity clustering and phrasing.

Extractors write relations as they find them ("works for", "Employer", "is employed by",
"employs"). Questions need one relation per meaning, with a direction, so labels go through:

1. `normalize_label`: lower case, `_`/`-` to spaces, punctuation dropped, a leading auxiliary
   ("is", "was", "has been", ...) and articles dropped ("was born in" -> "born in");
2. the synonym table (`RELATIONS`): each entry lists same-direction variants and inverse
   variants ("employs" is `employer` read backwards), and date-tailed labels go to their own
   table ("founded" -> "founding date" when the tail is a year, else `founded by` inverted);
3. labels in no table are clustered by string similarity of their stemmed forms (`RelationClusterer`).

The table also says how each relation reads in English, for question templates; relations the
table does not know get a generic phrasing from the label's shape (noun or verb phrase).
"""

from __future__ import annotations

import difflib
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_PUNCT = str.maketrans({c: " " for c in string.punctuation if c not in "'"} | {"'": ""})
_LEADING_AUX = ("has been", "have been", "had been", "is", "was", "are", "were", "has", "had")
_ARTICLES = {"a", "an", "the"}
_PREPOSITIONS = {"in", "of", "by", "at", "for", "to", "with", "from", "on", "as", "into"}
_IRREGULAR_PARTICIPLES = {"born", "known", "held", "led", "run", "built", "made", "written"}


def normalize_label(label: str) -> str:
    """Canonical spelling of a relation label: lower, no punctuation, no leading "is"/"the"."""
    text = unicodedata.normalize("NFKC", label).lower().replace("_", " ").replace("-", " ")
    words = text.translate(_PUNCT).split()
    joined = " ".join(words)
    for aux in _LEADING_AUX:
        if joined.startswith(aux + " "):
            words = joined[len(aux) + 1 :].split()
            break
    return " ".join(w for w in words if w not in _ARTICLES)


def stem_label(label: str) -> str:
    """Light suffix stripping per word ("works" -> "work", "founded" -> "found").

    Only inflections are stripped; agent nouns keep their "-er" ("employer" is not "employ":
    the direction differs).
    """
    out = []
    for word in label.split():
        for suffix in ("ing", "ed", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        out.append(word)
    return " ".join(out)


@dataclass(frozen=True)
class RelationSpec:
    """One canonical relation: its surface variants and how it reads in a question.

    `noun` reads "the {noun} of X" ("the employer of X"); `clause` follows a kind noun in a
    description, `{t}` standing for the tail ("a person employed by {t}").
    """

    canonical: str
    variants: tuple[str, ...] = ()
    inverse: tuple[str, ...] = ()
    """Labels that state the same fact from the tail's side: (Acme, employs, Bob) is
    (Bob, employer, Acme)."""
    noun: str = ""
    clause: str = ""


RELATIONS: tuple[RelationSpec, ...] = (
    RelationSpec(
        "employer",
        ("works for", "worked for", "works at", "worked at", "employed by", "employee of"),
        ("employs", "employed", "employee", "employees"),
        "employer",
        "employed by {t}",
    ),
    RelationSpec(
        "spouse", ("married to", "husband", "wife", "spouse of"), (), "spouse", "married to {t}"
    ),
    RelationSpec(
        "birthplace",
        ("born in", "born at", "place of birth", "birth place"),
        (),
        "birthplace",
        "born in {t}",
    ),
    RelationSpec(
        "death place",
        ("died in", "died at", "place of death"),
        (),
        "place of death",
        "who died in {t}",
    ),
    RelationSpec(
        "founded by",
        ("founder", "founders", "established by", "created by", "cofounded by"),
        ("founded", "founder of", "cofounded", "cofounder of", "established", "created"),
        "founder",
        "founded by {t}",
    ),
    RelationSpec(
        "headquartered in",
        ("headquarters", "based in", "head office", "hq", "headquarters location"),
        (),
        "headquarters",
        "headquartered in {t}",
    ),
    RelationSpec(
        "educated at",
        ("alma mater", "studied at", "graduated from", "alumnus of", "alumna of", "education"),
        ("alumni",),
        "alma mater",
        "educated at {t}",
    ),
    RelationSpec(
        "member of",
        ("belongs to", "membership"),
        ("has member", "members", "member"),
        "organisation",
        "belonging to {t}",
    ),
    RelationSpec(
        "located in", ("location", "situated in", "lies in"), (), "location", "located in {t}"
    ),
    RelationSpec(
        "capital",
        ("capital city", "has capital"),
        ("capital of",),
        "capital",
        "whose capital is {t}",
    ),
    RelationSpec(
        "chief executive",
        ("ceo", "chief executive officer", "headed by", "led by", "leader"),
        ("ceo of", "chief executive of", "heads", "leads", "chief executive officer of"),
        "chief executive",
        "led by {t}",
    ),
    RelationSpec(
        "parent",
        (
            "parent company",
            "parent organisation",
            "parent organization",
            "owned by",
            "subsidiary of",
            "division of",
            "father",
            "mother",
            "son of",
            "daughter of",
            "child of",
        ),
        (
            "child",
            "children",
            "son",
            "daughter",
            "subsidiary",
            "subsidiaries",
            "owns",
            "parent of",
            "parent company of",
        ),
        "parent",
        "whose parent is {t}",
    ),
    RelationSpec(
        "citizenship",
        ("citizen of", "nationality", "country of citizenship"),
        (),
        "country of citizenship",
        "a citizen of {t}",
    ),
    RelationSpec(
        "occupation",
        ("profession", "job", "job title", "works as"),
        (),
        "occupation",
        "working as {t}",
    ),
    RelationSpec(
        "participant",
        ("participants", "attendee", "attendees", "featured"),
        ("participated in", "took part in", "participant in", "attended event"),
        "participant",
        "with {t} among its participants",
    ),
    RelationSpec(
        "rd spend",
        ("r d spend", "research and development spend", "research and development spending"),
        (),
        "R&D spend",
        "whose R&D spend is {t}",
    ),
    RelationSpec(
        "led to",
        ("caused", "resulted in", "triggered", "gave rise to"),
        ("caused by", "result of", "triggered by", "due to", "because of"),
        "consequence",
        "which led to {t}",
    ),
)
"""Entity-tailed relations. Variants are written already normalised."""

DATE_RELATIONS: tuple[RelationSpec, ...] = (
    RelationSpec(
        "birth date",
        ("born", "born in", "born on", "date of birth", "birthdate", "birth year", "year of birth"),
        (),
        "year of birth",
        "born in {t}",
    ),
    RelationSpec(
        "death date",
        ("died", "died in", "died on", "date of death", "death year", "year of death"),
        (),
        "year of death",
        "who died in {t}",
    ),
    RelationSpec(
        "founding date",
        (
            "founded",
            "founded in",
            "founded on",
            "established",
            "established in",
            "year founded",
            "inception",
            "founding year",
        ),
        (),
        "founding year",
        "founded in {t}",
    ),
    RelationSpec(
        "event date",
        ("took place", "took place in", "held in", "occurred in", "happened in", "date"),
        (),
        "date",
        "held in {t}",
    ),
)
"""Relations whose tail is a year or date: the same words mean something else for an entity
("born in Lyon" is a birthplace, "born in 1950" a birth date)."""

ALIAS_LABELS = frozenset(
    {
        "also known as",
        "alias",
        "aliases",
        "aka",
        "known as",
        "nickname",
        "other name",
        "other names",
        "alternative name",
        "short name",
        "abbreviation",
        "full name",
    }
)
"""Normalised labels that say two names denote one entity; they merge nodes, not edges."""


def _index(specs: Iterable[RelationSpec]) -> dict[str, tuple[str, bool]]:
    index: dict[str, tuple[str, bool]] = {}
    for spec in specs:
        index[spec.canonical] = (spec.canonical, False)
        index.update((v, (spec.canonical, False)) for v in spec.variants)
        index.update((v, (spec.canonical, True)) for v in spec.inverse)
    return index


_ENTITY_INDEX = _index(RELATIONS)
_DATE_INDEX = _index(DATE_RELATIONS)
DATE_CANONICALS = frozenset(s.canonical for s in DATE_RELATIONS)
"""Canonical relations whose tail is a year or date."""
SPECS: dict[str, RelationSpec] = {s.canonical: s for s in (*RELATIONS, *DATE_RELATIONS)}


def table_lookup(label: str, date_tail: bool) -> tuple[str, bool] | None:
    """(canonical, inverted) from the synonym tables for a normalised label, or None."""
    if date_tail:
        return _DATE_INDEX.get(label)
    return _ENTITY_INDEX.get(label)


class RelationClusterer:
    """Maps raw labels to canonical relations, consistently for one set of triples.

    Built from every (label, date_tail) pair the triples hold, so the clustering of labels
    outside the table does not depend on the order triples arrive in: labels are visited by
    descending frequency (ties alphabetically) and each joins the first existing cluster whose
    stemmed representative is at least `threshold` similar, else founds its own.
    """

    def __init__(
        self,
        labels: Iterable[tuple[str, bool]],
        threshold: float,
        extra_synonyms: Mapping[str, str] | None = None,
    ) -> None:
        self.extra = {
            normalize_label(k): normalize_label(v) for k, v in (extra_synonyms or {}).items()
        }
        counts = Counter((normalize_label(label), date) for label, date in labels)
        self._clusters: dict[tuple[str, bool], tuple[str, bool]] = {}
        representatives: list[str] = sorted(SPECS)
        for (label, date), _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            known = self._known(label, date)
            if known is not None:
                self._clusters[label, date] = known
                continue
            stem = stem_label(label)
            match = next(
                (
                    rep
                    for rep in representatives
                    if difflib.SequenceMatcher(None, stem, stem_label(rep)).ratio() >= threshold
                ),
                None,
            )
            if match is None:
                representatives.append(label)
                self._clusters[label, date] = (label, False)
            else:
                self._clusters[label, date] = (match, False)

    def _known(self, label: str, date: bool) -> tuple[str, bool] | None:
        if label in self.extra:
            target = self.extra[label]
            return table_lookup(target, date) or (target, False)
        return table_lookup(label, date)

    def canonical(self, label: str, date_tail: bool) -> tuple[str, bool]:
        """(canonical relation, whether head and tail swap) for a raw label."""
        norm = normalize_label(label)
        if (norm, date_tail) in self._clusters:
            return self._clusters[norm, date_tail]
        return self._known(norm, date_tail) or (norm, False)


def _is_verbal(label: str) -> bool:
    """A verb phrase ("works for", "sponsors", "located in") rather than a noun ("sponsor").

    Without a part-of-speech tagger: a trailing preposition, a participle first, or a first word
    in the third person ("owns") marks a verb. Plural nouns as labels ("members") are rarer.
    """
    words = label.split()
    if not words:
        return False
    first = words[0]
    third_person = first.endswith("s") and not first.endswith(("ss", "us", "is"))
    return words[-1] in _PREPOSITIONS or _is_participle(first) or third_person


def _is_participle(word: str) -> bool:
    return word.endswith("ed") or word in _IRREGULAR_PARTICIPLES


def noun_phrase(relation: str, subject: str) -> str:
    """ "the employer of X": what the relation points to from `subject`."""
    spec = SPECS.get(relation)
    if spec is not None and spec.noun:
        return f"the {spec.noun} of {subject}"
    if not _is_verbal(relation):
        return f"the {relation} of {subject}"
    first = relation.split()[0]
    if _is_participle(first):
        return f"the entity that {subject} is {relation}"
    return f"the entity that {subject} {relation}"


def clause(relation: str, tail: str) -> str:
    """What follows a kind noun in a description: "born in Lyon", "whose sponsor is Acme"."""
    spec = SPECS.get(relation)
    if spec is not None and spec.clause:
        return spec.clause.format(t=tail)
    if not _is_verbal(relation):
        return f"whose {relation} is {tail}"
    if _is_participle(relation.split()[0]):
        return f"{relation} {tail}"
    return f"that {relation} {tail}"


def surface_forms(relation: str) -> list[str]:
    """Words a question about `relation` may use: the label, its variants and its noun."""
    spec = SPECS.get(relation)
    if spec is None:
        return [relation]
    return [spec.canonical, *spec.variants, *spec.inverse, *([spec.noun] if spec.noun else [])]
