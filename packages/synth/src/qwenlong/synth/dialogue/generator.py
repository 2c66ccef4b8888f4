"""The dialogue-memory generator: MRCR-style needle conversations as `TaskSample`s.

Unlike the document generators, this one writes its own long input, so `context` is filled and
`source_documents` is empty (the assembly stage leaves these samples alone). A sample reads like
an OpenAI MRCR row loaded by `qwenlong.evals.benchmarks.mrcr`: the same rendered context, the
final request as the question, and the same meta keys (prefix, n_needles, desired_msg_index,
messages), so the `mrcr` metric scores synthetic and benchmark items identically.

No model is involved: every word comes from `content`, and lengths are counted with the
corpus's `count_tokens` (the target tokenizer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from qwenlong.core.records import Provenance, TaskSample
from qwenlong.synth.dialogue.config import DialogueConfig
from qwenlong.synth.dialogue.content import WRITING_KINDS, needle_phrase
from qwenlong.synth.dialogue.needles import (
    NeedleConversation,
    NeedleSpec,
    build_needle_conversation,
    ordinal,
)
from qwenlong.synth.interfaces import Corpus, Counts, GenerationContext


class DialogueNeedleGenerator:
    """`Generator` of dialogue-memory samples; template-only, works without an LLM.

    For each target length, `samples_per_target` conversations are built, cycling through
    `needle_counts`. `difficulty` is the number of needles (more look-alike requests, harder
    to pick the right one) until verification replaces it with a pass rate.
    """

    name = "dialogue_needles"
    mode = "template"
    """How this generator ran, for the pipeline's report: always templates, never a model."""

    def __init__(self, config: DialogueConfig) -> None:
        self.config = config
        self.stats = Counts()
        """Empty: every conversation asked for is built, so there is nothing to tally."""

    def generate(self, corpus: Corpus, ctx: GenerationContext) -> Iterator[TaskSample]:
        """Conversations in config order (targets, then samples); deterministic for `ctx.rng`."""
        config = self.config
        for target in config.target_tokens:
            for index in range(config.samples_per_target):
                spec = NeedleSpec(
                    target_tokens=target,
                    n_needles=config.needle_counts[index % len(config.needle_counts)],
                    tolerance=config.length_tolerance,
                    prefix_length=config.prefix_length,
                    speakers=config.speakers,
                    distractor_pairs=config.distractor_pairs,
                    kinds=config.kinds,
                )
                conversation = build_needle_conversation(spec, corpus.count_tokens, ctx.rng)
                yield self.to_sample(conversation, target)
            ctx.log(f"{self.name}: {config.samples_per_target} conversations of ~{target} tokens")

    def to_sample(self, conversation: NeedleConversation, target_tokens: int) -> TaskSample:
        """The `TaskSample` of one conversation, keyed by a hash of its content."""
        messages = conversation.messages
        messages_json = json.dumps(messages, ensure_ascii=False)
        digest = hashlib.sha256(
            json.dumps([self.name, messages_json, conversation.answer]).encode("utf-8")
        ).hexdigest()
        phrase = needle_phrase(WRITING_KINDS.get(conversation.kind), conversation.topic)
        n_needles = len(conversation.needle_indices)
        return TaskSample(
            id=f"{self.name}-{digest[:16]}",
            task_type="dialogue_memory",
            question=messages[-1]["content"],
            answers=[conversation.answer],
            answer_kind="sequence",
            context=conversation.context,
            provenance=Provenance(
                generator=self.name,
                source_documents=[],
                reasoning_chain=[
                    f"requests for a {phrase}: messages {conversation.needle_indices}",
                    f"the {ordinal(conversation.ordinal)} of them is message "
                    f"{conversation.desired_msg_index - 1}; its answer is message "
                    f"{conversation.desired_msg_index}",
                    f"the gold is {conversation.prefix!r} followed by that answer, verbatim",
                ],
            ),
            context_tokens=conversation.context_tokens,
            difficulty=float(n_needles),
            meta={
                "prefix": conversation.prefix,
                "n_needles": str(n_needles),
                "desired_msg_index": str(conversation.desired_msg_index),
                "messages": messages_json,
                "needle_ordinal": str(conversation.ordinal),
                "needle_kind": conversation.kind,
                "needle_topic": conversation.topic,
                "target_tokens": str(target_tokens),
            },
        )
