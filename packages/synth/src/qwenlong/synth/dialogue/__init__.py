"""Dialogue memory: MRCR-style needle conversations, generated without a model.

from qwenlong.synth.dialogue import DialogueConfig, DialogueNeedleGenerator
samples = list(DialogueNeedleGenerator(DialogueConfig()).generate(corpus, ctx))
"""

from qwenlong.synth.dialogue.config import DialogueConfig
from qwenlong.synth.dialogue.content import WRITING_KINDS, WritingKind
from qwenlong.synth.dialogue.generator import DialogueNeedleGenerator
from qwenlong.synth.dialogue.needles import (
    NeedleConversation,
    NeedleSpec,
    build_needle_conversation,
    ordinal,
)

__all__ = [
    "WRITING_KINDS",
    "DialogueConfig",
    "DialogueNeedleGenerator",
    "NeedleConversation",
    "NeedleSpec",
    "WritingKind",
    "build_needle_conversation",
    "ordinal",
]
