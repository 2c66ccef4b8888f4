"""Settings of the dialogue-memory needle generator."""

from __future__ import annotations

from pydantic import Field, field_validator

from qwenlong.core.config import ConfigModel
from qwenlong.synth.dialogue.content import WRITING_KINDS


class DialogueConfig(ConfigModel):
    """MRCR-style dialogue needles (RECIPE.md section 1: dialogue memory, dense 0..1 reward).

    The paper names the task and its reward but publishes no generator settings; every default
    below is ours unless it says it follows OpenAI MRCR.
    """

    target_tokens: tuple[int, ...] = (4096, 8192, 16384, 32768, 65536, 131072)
    """Context lengths to build, in the target tokenizer's tokens (the rendered conversation
    without the final request). Powers of two from 4K to 128K cover MRCR's bins up to the
    paper's 128K column. Each must be at least 2048: below that the length window is narrower
    than one short turn."""
    samples_per_target: int = Field(default=4, ge=1)
    """Conversations built per target length."""
    needle_counts: tuple[int, ...] = (2, 4, 8)
    """Numbers of near-identical requests per conversation, used in turn (MRCR's published
    2, 4 and 8 needles)."""
    length_tolerance: float = Field(default=0.02, gt=0, lt=0.5)
    """Largest relative distance between a context's token count and its target (the issue
    asks for 2%)."""
    prefix_length: int = Field(default=10, ge=4, le=64)
    """Characters of the random string the answer must start with (MRCR uses 10)."""
    speakers: int = Field(default=3, ge=1, le=20)
    """Named participants voicing the user side; 1 gives MRCR's plain two-party chat."""
    distractor_pairs: int = Field(default=12, ge=1)
    """Distinct (kind, topic) requests the distractor turns draw from, so distractors repeat
    too. About a third share the needle's topic and a third its kind: the near misses."""
    kinds: tuple[str, ...] = ("poem", "story", "note", "list", "letter", "riddle")
    """Writing kinds (WRITING_KINDS names) requests ask for; needles and distractors alike."""

    @field_validator("target_tokens")
    @classmethod
    def _check_targets(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("needs at least one target length")
        small = [t for t in value if t < 2048]
        if small:
            raise ValueError(f"targets below 2048 tokens are too short to fit: {small}")
        return value

    @field_validator("needle_counts")
    @classmethod
    def _check_needles(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("needs at least one needle count, each at least 1")
        return value

    @field_validator("kinds")
    @classmethod
    def _check_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [kind for kind in value if kind not in WRITING_KINDS]
        if unknown:
            raise ValueError(f"unknown writing kinds {unknown}; known: {WRITING_KINDS.names()}")
        if len(set(value)) < 2:
            raise ValueError("needs at least two distinct writing kinds (needle and distractors)")
        return value
