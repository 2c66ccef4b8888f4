"""Document clusters: groups of k related documents that one proposer reads together.

The rule, in full:

- Documents are only grouped with documents of the same `domain`.
- Each document gets two profiles: its entity names (runs of capitalised words, with a single
  capitalised word kept only when it does not open a sentence, and leading function words such
  as "The" dropped) and its `profile_words` most frequent content words (lower-case words of
  four letters or more, minus a stop list).
- Two documents are related when they share at least `min_shared_names` names, or when the
  Jaccard overlap of their word profiles is at least `min_word_overlap`.
- Their affinity is (shared names, word overlap), compared in that order: a shared person or
  company says more about a common subject than common vocabulary does.
- Clusters grow greedily: documents are visited in a seeded random order; each unassigned
  document seeds a cluster, which repeatedly takes the unassigned related document with the
  highest summed affinity to its members (ties: smaller id), while the cluster has fewer than `size` documents
  and the documents' tokens stay within `max_tokens`. Clusters of fewer than `min_size`
  documents are dropped, and their seed is not tried again.

Candidates are looked up in an inverted index of names and words rather than by comparing every
pair, which keeps an 80K-document corpus tractable; a seeded visiting order gives different,
reproducible clusters per seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from qwenlong.core.records import Document
from qwenlong.synth.mase.config import ClusterConfig

_CAPITALISED_RUN = re.compile(
    r"[A-Z][\w'&.-]*[\w&](?:[ \t]+(?:of|the|de|van|von|and|&)?[ \t]*[A-Z][\w'&.-]*[\w&])*"
)
_WORD = re.compile(r"[a-z]{4,}")
FUNCTION_WORDS = frozenset(
    {
        "The", "A", "An", "In", "On", "At", "Of", "For", "By", "And", "But", "Or", "If", "When",
        "While", "After", "Before", "This", "That", "These", "Those", "It", "Its", "He", "She",
        "They", "We", "You", "I", "His", "Her", "Their", "Our", "Your", "My", "From", "To", "With",
        "As", "Since", "During", "Although", "However", "Meanwhile", "Also", "Then", "There", "Here",
        "Such", "Each", "Every", "Some", "All", "Most",
    }
)  # fmt: skip
"""Capitalised words that are not names (dropped from the start of a name run)."""
STOP_WORDS = frozenset(
    {
        "that", "this", "with", "from", "have", "were", "been", "they", "their", "there", "which",
        "would", "about", "after", "before", "also", "into", "more", "than", "then", "them", "these",
        "those", "when", "where", "while", "other", "some", "such", "only", "over", "under", "what",
        "will", "your", "said", "each", "very", "much", "most", "many", "just", "like", "being",
        "does", "here", "year", "years", "first", "last", "both", "between", "through", "during",
        "because", "could", "should",
    }
)  # fmt: skip
"""Frequent lower-case words that carry no subject."""
COMMON_FLOOR = 50
"""A name or word in at most this many documents of a domain is always used to find candidates."""
COMMON_SHARE = 0.05
"""Above COMMON_FLOOR, a name or word in more than this share of a domain's documents is not."""


def _opens_sentence(text: str, position: int) -> bool:
    """Whether `position` starts a sentence: text start, or after . ! ? : ; a newline or a quote."""
    before = text[max(0, position - 8) : position].rstrip(" \t")
    return not before or before[-1] in '.!?:;\n"“('


def entity_names(text: str) -> set[str]:
    """Names in `text`: capitalised runs without leading function words; a lone capitalised word
    counts only when it does not open a sentence ("Paris" in "In Paris" does, "Rain." does not)."""
    names: set[str] = set()
    for match in _CAPITALISED_RUN.finditer(text):
        words = match.group(0).split()
        dropped = 0
        while dropped < len(words) and words[dropped] in FUNCTION_WORDS:
            dropped += 1
        kept = words[dropped:]
        if not kept:
            continue
        if len(kept) == 1 and not dropped and _opens_sentence(text, match.start()):
            continue
        name = " ".join(kept).rstrip(".")
        if len(name) > 1:
            names.add(name)
    return names


def content_profile(text: str, size: int) -> set[str]:
    """The `size` most frequent content words of `text` (ties broken alphabetically)."""
    counts = Counter(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {word for word, _ in ranked[:size]}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass(frozen=True)
class DocumentCluster:
    """Related documents a proposer reads together."""

    id: str
    """Stable id: a hash of the member document ids."""
    documents: tuple[Document, ...]
    domain: str
    shared_names: tuple[str, ...]
    """Names found in at least two members (sorted): the cluster's common subjects."""

    @property
    def doc_ids(self) -> list[str]:
        return [doc.id for doc in self.documents]


@dataclass
class _Profile:
    doc: Document
    names: set[str]
    words: set[str]
    tokens: int


class _Index:
    """Inverted index of one domain's profiles: finds candidates without scanning every pair.

    A name or word found in more than max(COMMON_FLOOR, COMMON_SHARE x documents) of the
    domain's documents is too common to suggest a shared subject, and is not used to look up
    candidates (it still counts in the overlap of candidates found otherwise).
    """

    def __init__(self, profiles: list[_Profile]) -> None:
        self.names: dict[str, list[_Profile]] = defaultdict(list)
        self.words: dict[str, list[_Profile]] = defaultdict(list)
        for profile in profiles:
            for name in profile.names:
                self.names[name].append(profile)
            for word in profile.words:
                self.words[word].append(profile)
        self.max_posting = max(COMMON_FLOOR, int(COMMON_SHARE * len(profiles)))

    def neighbours(self, profile: _Profile) -> dict[str, _Profile]:
        """Documents sharing at least one informative name or word with `profile`, by id."""
        found: dict[str, _Profile] = {}
        for postings, keys in ((self.names, profile.names), (self.words, profile.words)):
            for key in keys:
                posting = postings[key]
                if len(posting) <= self.max_posting:
                    found.update((other.doc.id, other) for other in posting)
        found.pop(profile.doc.id, None)
        return found


def _affinity(a: _Profile, b: _Profile, config: ClusterConfig) -> tuple[int, float] | None:
    """(shared names, word overlap) when `a` and `b` are related, else None."""
    shared = len(a.names & b.names)
    overlap = jaccard(a.words, b.words)
    if shared >= config.min_shared_names or overlap >= config.min_word_overlap:
        return shared, overlap
    return None


def _grow(
    seed: _Profile, index: _Index, assigned: set[str], config: ClusterConfig
) -> list[_Profile]:
    """The seed plus the most related unassigned documents, within size and token budget.

    Ties go to the smaller document id, so the result does not depend on dictionary order.
    """
    members, tokens = [seed], seed.tokens
    member_ids = {seed.doc.id}
    scores: dict[str, tuple[int, float]] = {}
    candidates: dict[str, _Profile] = {}
    while len(members) < config.size:
        for doc_id, other in index.neighbours(members[-1]).items():
            if doc_id in assigned or doc_id in member_ids:
                continue
            affinity = _affinity(members[-1], other, config)
            if affinity is not None:
                names, words = scores.get(doc_id, (0, 0.0))
                scores[doc_id] = (names + affinity[0], words + affinity[1])
                candidates[doc_id] = other
        fitting = [i for i in scores if tokens + candidates[i].tokens <= config.max_tokens]
        if not fitting:
            break
        best = min(fitting, key=lambda i: (-scores[i][0], -scores[i][1], i))
        members.append(candidates[best])
        member_ids.add(best)
        tokens += candidates[best].tokens
        del scores[best]
    return members


def _cluster(members: list[_Profile]) -> DocumentCluster:
    ids = [m.doc.id for m in members]
    counts = Counter(name for m in members for name in m.names)
    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:16]
    return DocumentCluster(
        id=f"cluster-{digest}",
        documents=tuple(m.doc for m in members),
        domain=members[0].doc.domain,
        shared_names=tuple(sorted(name for name, n in counts.items() if n >= 2)),
    )


def build_clusters(
    documents: list[Document],
    count_tokens: Callable[[Document], int],
    config: ClusterConfig,
    rng: random.Random,
) -> list[DocumentCluster]:
    """Clusters of related documents by the rule in this module's docstring.

    `count_tokens` gives a document's length in target tokens (`Corpus.tokens`). Documents
    longer than `max_tokens` on their own are never clustered.
    """
    by_domain: dict[str, list[_Profile]] = {}
    for doc in sorted(documents, key=lambda d: d.id):
        tokens = count_tokens(doc)
        if tokens > config.max_tokens:
            continue
        profile = _Profile(
            doc, entity_names(doc.text), content_profile(doc.text, config.profile_words), tokens
        )
        by_domain.setdefault(doc.domain, []).append(profile)
    indexes = {domain: _Index(profiles) for domain, profiles in by_domain.items()}
    order = [p for domain in sorted(by_domain) for p in by_domain[domain]]
    rng.shuffle(order)
    assigned: set[str] = set()
    clusters: list[DocumentCluster] = []
    for seed in order:
        if seed.doc.id in assigned:
            continue
        assigned.add(seed.doc.id)
        members = _grow(seed, indexes[seed.doc.domain], assigned, config)
        if len(members) < config.min_size:
            continue
        assigned.update(m.doc.id for m in members)
        clusters.append(_cluster(members))
        if config.max_clusters is not None and len(clusters) >= config.max_clusters:
            break
    return clusters
