"""The batched memory loop, driven by a scripted stub model that reads its own prompts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion
from qwenlong.evals.prompts import ANSWER_REQUEST
from qwenlong.memagent.agent import MemoryAgent
from qwenlong.memagent.chunking import iter_chunks, text_reader
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import AgentTask
from qwenlong.memagent.prompts import EMPTY_MEMORY, FINAL_INTRO

CHUNK = 16


class ScriptedModel:
    """Update prompts: memory = previous memory + "[s<number>:<first word>]" (+ "/k" for the
    k-th completion of a fan-out), plan = "after s<number>". Final prompts: "Therefore, the
    answer is <memory>". `bad[(problem, number)]` replaces an update reply with (text, finish).
    """

    name = "scripted"

    def __init__(self, bad: dict[tuple[str, int], tuple[str, str]] | None = None) -> None:
        self.bad = bad or {}
        self.calls: list[tuple[list, SamplingParams]] = []

    def generate(self, conversations, sampling):
        self.calls.append((list(conversations), sampling))
        return [
            [self._reply(c[-1]["content"], k, sampling) for k in range(sampling.n)]
            for c in conversations
        ]

    def _reply(self, prompt: str, k: int, sampling: SamplingParams) -> Completion:
        if prompt.startswith(FINAL_INTRO):
            memory = _between(prompt, "<memory>\n", "\n</memory>")
            return Completion(f"Therefore, the answer is {memory}", token_ids=[7, 7])
        problem = _between(prompt, "<problem>\n", "\n</problem>")
        number = int(re.search(r'<section number="(\d+)">', prompt).group(1))
        if (problem, number) in self.bad:
            text, finish = self.bad[(problem, number)]
            return Completion(text, finish_reason=finish)
        previous = _between(prompt, "<previous_memory>\n", "\n</previous_memory>")
        previous = "" if previous == EMPTY_MEMORY else previous
        section = _between(prompt, f'<section number="{number}">\n', "\n</section>")
        lane = f"/{k}" if sampling.n > 1 else ""
        memory = f"{previous}[s{number}:{section.split()[0]}{lane}]"
        return Completion(f"<memory>{memory}</memory><plan>after s{number}</plan>", [1, 2, 3])

    def close(self) -> None:
        pass


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _doc(tag: str, sentences: int) -> str:
    return " ".join(f"{tag}{i} went to the old market and came back." for i in range(sentences))


def _task(question: str, document: str, **extra) -> AgentTask:
    return AgentTask(id=question, question=question, read=text_reader(document), **extra)


def _n_chunks(tokenizer, document: str) -> int:
    return len(list(iter_chunks(document, tokenizer, CHUNK)))


CONFIG = MemAgentConfig(chunk_tokens=CHUNK, memory_tokens=4000, plan_tokens=64)
SAMPLING = SamplingParams(max_new_tokens=50, temperature=0.5, top_p=0.9, seed=10)


class Recorder:
    def __init__(self) -> None:
        self.steps, self.results = [], []

    def on_step(self, step) -> None:
        self.steps.append(step)

    def on_result(self, sample_id, results) -> None:
        self.results.append((sample_id, list(results)))


def test_memory_is_carried_and_plan_overwritten_with_one_call_per_step(tokenizer):
    docs = {"long": _doc("a", 6), "short": _doc("b", 1), "mid": _doc("c", 3)}
    chunks = {q: list(iter_chunks(d, tokenizer, CHUNK)) for q, d in docs.items()}
    counts = {q: len(c) for q, c in chunks.items()}
    assert counts["long"] > counts["mid"] > counts["short"] >= 1
    model = ScriptedModel()
    tasks = [_task(q, d, instruction="Answer in one word.") for q, d in docs.items()]
    results = MemoryAgent(model, tokenizer, CONFIG).run(tasks, SAMPLING)

    assert len(model.calls) == max(counts.values()) + 1  # K_max update calls + one final call
    active = [len(conversations) for conversations, _ in model.calls[:-1]]
    assert active == [sum(counts[q] > t for q in docs) for t in range(max(counts.values()))]
    assert len(model.calls[-1][0]) == 3
    for chunk_list, [result] in zip(chunks.values(), results, strict=True):
        expected = "".join(f"[s{c.index + 1}:{c.text.split()[0]}]" for c in chunk_list)
        assert result.memory.memory == expected  # every step's note survives, in order
        assert result.memory.plan == f"after s{len(chunk_list)}"  # only the last plan is kept
        assert result.text == f"Therefore, the answer is {expected}"
        assert result.n_steps == len(chunk_list) and result.failed_steps == 0
        assert result.document_tokens == sum(c.n_tokens for c in chunk_list)
        assert [s.step for s in result.steps] == list(range(len(chunk_list)))
        assert [s.chunk_start_token for s in result.steps] == [c.start_token for c in chunk_list]
    final_prompt = model.calls[-1][0][0][0]["content"]
    assert final_prompt.index("Answer in one word.") < final_prompt.index(ANSWER_REQUEST)
    assert final_prompt.count(ANSWER_REQUEST) == 1


def test_samples_finish_at_different_steps(tokenizer):
    docs = [_doc("x", 1), _doc("y", 4)]
    k_short, k_long = (_n_chunks(tokenizer, d) for d in docs)
    model = ScriptedModel()
    recorder = Recorder()
    agent = MemoryAgent(model, tokenizer, CONFIG, observer=recorder)
    agent.run([_task("x?", docs[0]), _task("y?", docs[1])], SAMPLING)
    last_step = {q: max(s.step for s in recorder.steps if s.sample_id == q) for q in ("x?", "y?")}
    assert last_step == {"x?": k_short - 1, "y?": k_long - 1}
    for step, (conversations, _) in enumerate(model.calls[:-1]):
        problems = [_between(c[0]["content"], "<problem>\n", "\n</problem>") for c in conversations]
        assert problems == (["x?", "y?"] if step < k_short else ["y?"])
    assert [sample_id for sample_id, _ in recorder.results] == ["x?", "y?"]


def test_bad_outputs_keep_the_previous_memory_and_are_recorded(tokenizer):
    doc = _doc("m", 5)
    chunks = list(iter_chunks(doc, tokenizer, CHUNK))
    assert len(chunks) >= 5
    bad = {
        ("q", 2): ("", "stop"),
        ("q", 3): ("I cannot find anything relevant.", "stop"),
        ("q", 4): ("<memory>[s1:m0][s2 and then it was cu", "length"),
    }
    model = ScriptedModel(bad)
    [[result]] = MemoryAgent(model, tokenizer, CONFIG).run([_task("q", doc)], SAMPLING)
    statuses = [s.status for s in result.steps]
    assert statuses[:5] == ["ok", "empty", "missing_memory", "truncated", "ok"]
    first = f"[s1:{chunks[0].text.split()[0]}]"
    assert [s.memory for s in result.steps[:4]] == [first] * 4  # carried through three failures
    assert result.steps[4].memory == first + f"[s5:{chunks[4].text.split()[0]}]"
    assert result.failed_steps == 3
    raw = [s.raw_output for s in result.steps[:5]]
    assert raw == [None, "", "I cannot find anything relevant.", bad[("q", 4)][0], None]


def test_n_lanes_fan_out_at_the_first_step_and_stay_independent(tokenizer):
    doc = _doc("n", 3)
    k = _n_chunks(tokenizer, doc)
    model = ScriptedModel()
    sampling = SamplingParams(max_new_tokens=50, n=2, seed=3)
    [lanes] = MemoryAgent(model, tokenizer, CONFIG).run([_task("q", doc)], sampling)
    assert [len(c) for c, _ in model.calls] == [1] + [2] * (k - 1) + [2]
    assert [s.n for _, s in model.calls] == [2] + [1] * (k - 1) + [1]
    assert [lane.lane for lane in lanes] == [0, 1]
    assert lanes[0].memory.memory.startswith("[s1:n0/0]")
    assert lanes[1].memory.memory.startswith("[s1:n0/1]")
    assert lanes[0].text != lanes[1].text


def test_step_and_final_sampling_follow_config_and_seed_offsets(tokenizer):
    config = MemAgentConfig(
        chunk_tokens=CHUNK,
        memory_tokens=4000,
        step={"max_new_tokens": 30, "temperature": 0.0},
        final_max_tokens=12,
    )
    model = ScriptedModel()
    doc = _doc("s", 2)
    k = _n_chunks(tokenizer, doc)
    MemoryAgent(model, tokenizer, config).run([_task("q", doc)], SAMPLING)
    steps = [s for _, s in model.calls[:-1]]
    assert [(s.max_new_tokens, s.temperature, s.top_p) for s in steps] == [(30, 0.0, 0.9)] * k
    assert [s.seed for s in steps] == [11 + t for t in range(k)]
    final = model.calls[-1][1]
    assert (final.max_new_tokens, final.temperature, final.seed, final.n) == (12, 0.5, 10, 1)


def test_memory_over_budget_is_clipped(tokenizer):
    model = ScriptedModel(
        {("q", 1): ("<memory>" + "fact " * 300 + "</memory><plan>p</plan>", "stop")}
    )
    config = MemAgentConfig(chunk_tokens=CHUNK, memory_tokens=20, plan_tokens=16)
    [[result]] = MemoryAgent(model, tokenizer, config).run([_task("q", _doc("c", 1))], SAMPLING)
    first = result.steps[0]
    assert "memory_clipped" in first.issues
    assert len(tokenizer(first.memory, add_special_tokens=False)["input_ids"]) <= 20


def test_observer_only_mode_and_empty_documents(tokenizer):
    recorder = Recorder()
    model = ScriptedModel()
    agent = MemoryAgent(model, tokenizer, CONFIG, observer=recorder)
    results = agent.run(
        [_task("full", _doc("f", 2)), _task("empty", "")], SAMPLING, keep_steps=False
    )
    assert all(not r.steps for per in results for r in per)
    assert len(recorder.steps) == results[0][0].n_steps > 0
    empty = results[1][0]
    assert (empty.n_steps, empty.document_tokens, empty.memory.memory) == (0, 0, "")
    assert "(no notes were kept)" in model.calls[-1][0][1][0]["content"]
    assert agent.run([], SAMPLING) == []


def test_a_reply_of_the_wrong_shape_is_a_backend_error(tokenizer):
    class Short(ScriptedModel):
        def generate(self, conversations, sampling):
            return super().generate(conversations, sampling)[:-1]

    with pytest.raises(BackendError, match="returned"):
        MemoryAgent(Short(), tokenizer, CONFIG).run(
            [_task("a", "one."), _task("b", "two.")], SAMPLING
        )
