"""Dialogue content: the needle phrase is unambiguous, composers honour sizes and vary."""

from __future__ import annotations

import random
import re

import pytest

from qwenlong.synth.dialogue.content import (
    SPEAKER_NAMES,
    TOPICS,
    WRITING_KINDS,
    needle_phrase,
    write_answer,
    write_request,
)

KINDS = [WRITING_KINDS.get(name) for name in WRITING_KINDS.names()]
PHRASES = {
    (kind.noun, topic): re.compile(rf"\b{re.escape(needle_phrase(kind, topic))}\b")
    for kind in KINDS
    for topic in TOPICS
}


def test_topics_are_distinct_single_words() -> None:
    assert len(set(TOPICS)) == len(TOPICS)
    assert all(re.fullmatch(r"[a-z]+", topic) for topic in TOPICS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.noun)
def test_each_request_matches_exactly_its_own_phrase(kind) -> None:
    """The needle question's matching rule picks out one (kind, topic) pair per request."""
    rng = random.Random(0)
    for topic in TOPICS:
        for speaker in (None, "Priya"):
            request = write_request(kind, topic, rng, speaker)
            found = {pair for pair, pattern in PHRASES.items() if pattern.search(request)}
            assert found == {(kind.noun, topic)}, request


def test_speaker_voices_the_request() -> None:
    kind = WRITING_KINDS.get("poem")
    voiced = write_request(kind, "tapirs", random.Random(1), "Ingrid")
    plain = write_request(kind, "tapirs", random.Random(1), None)
    assert "Ingrid" in voiced
    assert not any(name in plain for name in SPEAKER_NAMES)
    assert plain[0].isupper()


def test_poem_size_is_its_stanza_count() -> None:
    poem = write_answer(WRITING_KINDS.get("poem"), "otters", random.Random(2), size=3)
    stanzas = poem.split("\n\n")
    assert len(stanzas) == 3
    assert all(len(stanza.split("\n")) == 4 for stanza in stanzas)


def test_list_size_is_its_item_count_and_title_agrees() -> None:
    text = write_answer(WRITING_KINDS.get("list"), "comets", random.Random(3), size=5)
    lines = text.split("\n")
    assert lines[0].startswith("5 ") and lines[0].endswith("about comets:")
    assert [line.split(".")[0] for line in lines[1:]] == ["1", "2", "3", "4", "5"]


def test_story_has_opening_middle_and_ending() -> None:
    story = write_answer(WRITING_KINDS.get("story"), "kites", random.Random(4), size=2)
    assert story.count(". ") + story.count(": ") >= 3
    assert story.startswith("In ") and "kites" in story


def test_riddle_ends_with_its_answer() -> None:
    riddle = write_answer(WRITING_KINDS.get("riddle"), "owls", random.Random(5), size=2)
    assert riddle.split("\n")[-2:] == ["What are we?", "Answer: owls."]
    assert len(riddle.split("\n")) == 4


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.noun)
def test_composers_are_seeded_and_varied(kind) -> None:
    first = write_answer(kind, "tapirs", random.Random(7))
    again = write_answer(kind, "tapirs", random.Random(7))
    assert first == again
    rng = random.Random(8)
    writings = {write_answer(kind, "tapirs", rng) for _ in range(10)}
    assert len(writings) == 10


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.noun)
def test_shortest_size_is_shorter_than_longest(kind) -> None:
    low, high = kind.sizes
    short = [len(write_answer(kind, "harbours", random.Random(s), size=low)) for s in range(5)]
    long = [len(write_answer(kind, "harbours", random.Random(s), size=high)) for s in range(5)]
    assert max(short) < min(long)
