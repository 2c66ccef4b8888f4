"""LLM rewriting: each rejection check by hand, batching, and the generator's fallback."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest

from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, Document
from qwenlong.synth.interfaces import Corpus, GenerationContext, Triple
from qwenlong.synth.kg import KGConfig, KGMultihopGenerator, RewriteConfig
from qwenlong.synth.kg.config import ObfuscationConfig
from qwenlong.synth.kg.graph import build_graph
from qwenlong.synth.kg.obfuscate import Describer
from qwenlong.synth.kg.paradigms import PARADIGMS
from qwenlong.synth.kg.paths import Hop, Path
from qwenlong.synth.kg.questions import Question, QuestionWriter
from qwenlong.synth.kg.rewrite import REWRITE_PROMPT, QuestionRewriter, check_rewrite, relation_kept

TRIPLES = [
    Triple("Ada", "employer", "Acme", "d1", None, "", "person", "organisation"),
    Triple("Acme", "headquartered in", "Oslo", "d2", None, "", "organisation", "place"),
    Triple("Bo", "employer", "Beta", "d3", None, "", "person", "organisation"),
    Triple("Beta", "headquartered in", "Rome", "d4", None, "", "organisation", "place"),
]


def question() -> Question:
    g = build_graph(TRIPLES)
    path = Path(
        (
            Hop("ada", "employer", "acme", "d1", None, "only"),
            Hop("acme", "headquartered in", "oslo", "d2", None, "only"),
        )
    )
    w = QuestionWriter(g, Describer(g, 2), ObfuscationConfig(enabled=False))
    rng = random.Random(0)
    q = PARADIGMS.get("multi_fact").write(w, path, rng, None)
    assert q is not None
    return q


@pytest.mark.parametrize(
    ("rewrite", "reason"),
    [
        ("Where is the company that employs Ada headquartered?", None),
        ("In which city does Ada's employer have its headquarters?", None),
        ("I cannot help with that.", "empty"),
        ("Ada?", "length"),
        ("Where is the employer of Bo headquartered?", "anchor"),
        ("Where is Ada's employer, Acme, headquartered?", "leak"),
        ("Is Ada's employer headquartered in Oslo?", "leak"),
        ("In which city does the company Ada founded have its headquarters?", "relation"),
        ("Where is the employer of Ada located?", "relation"),
    ],
)
def test_check_rewrite_by_hand(rewrite: str, reason: str | None) -> None:
    assert check_rewrite(question(), rewrite, RewriteConfig()) == reason


def test_relation_kept_uses_stems_of_any_surface_form() -> None:
    assert relation_kept("employer", "Who employs Ada?")
    assert relation_kept("employer", "Where did Ada study?") is False
    assert relation_kept("employer", "Where did Ada work for a while?")
    assert relation_kept("employer", "Which firm did Ada work for?")
    assert relation_kept("sponsored by", "Who owns it?") is False
    assert relation_kept("sponsored by", "By whom was it sponsored?")


class Scripted:
    name = "scripted"

    def __init__(self, reply: Callable[[str], str]) -> None:
        self.reply = reply
        self.calls: list[list[Conversation]] = []

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(list(conversations))
        out = []
        for c in conversations:
            asked = c[0]["content"].split("Question: ", 1)[1]
            out.append([Completion(self.reply(asked))])
        return out

    def close(self) -> None:
        """Nothing to release."""


def test_rewriter_batches_and_keeps_only_safe_rewrites() -> None:
    q = question()
    model = Scripted(
        lambda asked: (
            "<think>hm</think>Question: Where is the company that employs Ada headquartered?"
        )
    )
    leaky = Question(**{**q.__dict__, "text": q.text + " "})
    rewriter = QuestionRewriter(model, RewriteConfig(enabled=True), lambda _: None)
    assert rewriter.rewrite([q, leaky]) == [
        "Where is the company that employs Ada headquartered?",
        "Where is the company that employs Ada headquartered?",
    ]
    assert len(model.calls) == 1 and len(model.calls[0]) == 2
    prompt = model.calls[0][0][0]["content"]
    assert prompt == REWRITE_PROMPT.format(question=q.text) and "Oslo" not in prompt
    bad = QuestionRewriter(
        Scripted(lambda asked: "Oslo is where, Ada's employer?"), RewriteConfig(), lambda _: None
    )
    assert bad.rewrite([q]) == [None] and bad.stats == {"leak": 1}


def corpus() -> Corpus:
    return Corpus([Document(f"d{i}", f"text {i}") for i in range(1, 5)], lambda s: len(s.split()))


def run(llm, rewrite: bool) -> tuple[KGMultihopGenerator, list]:
    config = KGConfig(rewrite=RewriteConfig(enabled=rewrite))
    gen = KGMultihopGenerator(config, TRIPLES)
    ctx = GenerationContext(random.Random(0), llm=llm, log=lambda _: None)
    return gen, list(gen.generate(corpus(), ctx))


def test_generator_uses_accepted_rewrites_and_keeps_ids_stable() -> None:
    _, plain = run(None, rewrite=True)
    assert plain
    gen, rewritten = run(Scripted(lambda asked: f"Please answer this: {asked}"), rewrite=True)
    assert gen.mode == "template+llm_rewrite"
    assert [s.id for s in rewritten] == [s.id for s in plain]
    for before, after in zip(plain, rewritten, strict=True):
        assert after.question == f"Please answer this: {before.question}"
        assert (
            after.meta["rewritten"] == "yes" and after.meta["template_question"] == before.question
        )
        assert after.answers == before.answers
    assert gen.stats["rewrite_accepted"] == len(plain)


def test_generator_falls_back_to_templates_when_rewrites_fail_or_are_off() -> None:
    _, plain = run(None, rewrite=False)
    gen, rejected = run(Scripted(lambda asked: "no"), rewrite=True)
    assert [s.question for s in rejected] == [s.question for s in plain]
    assert all(s.meta["rewritten"] == "no" for s in rejected)
    assert gen.stats["rewrite_empty"] == len(plain)
    model = Scripted(lambda asked: asked)
    gen, off = run(model, rewrite=False)
    assert gen.mode == "template" and model.calls == [] and off == plain
