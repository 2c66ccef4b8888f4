"""Reference trajectories: the evidence enters the memory as its chunk is read, and an agent that
replies with the reference targets sees exactly the reference prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from qwenlong.core.errors import DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, TaskSample
from qwenlong.memagent.agent import MemoryAgent
from qwenlong.memagent.chunking import text_reader
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.memagent.interfaces import AgentTask, MemoryState
from qwenlong.memagent.parse import parse_update
from qwenlong.memagent.reference import (
    NOTHING_YET,
    PLAN_DONE,
    PLAN_SEARCHING,
    evidence_texts,
    locate,
    reference_trajectory,
)

FILLER = " ".join(f"filler{i} words here." for i in range(40))
EVIDENCE = "| name = Vriaxa Vastovin\n| occupation = chemist"
DOCUMENT = f"{FILLER}\n\n\n{EVIDENCE}\n\n\n{FILLER}"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def task(document: str = DOCUMENT) -> AgentTask:
    return AgentTask(
        id="t", question="What is the occupation of Vriaxa Vastovin?", read=text_reader(document)
    )


def config(chunk_tokens: int) -> MemAgentConfig:
    return MemAgentConfig(chunk_tokens=chunk_tokens, memory_tokens=512, plan_tokens=32)


def test_evidence_texts_read_the_character_spans() -> None:
    start = DOCUMENT.index(EVIDENCE)
    sample = TaskSample(
        id="s",
        task_type="reading",
        question="q",
        answers=["chemist"],
        context=DOCUMENT,
        meta={"evidence_chars": json.dumps([[start, start + len(EVIDENCE)]])},
    )
    assert evidence_texts(sample) == [EVIDENCE]
    assert evidence_texts(TaskSample(id="n", task_type="reading", question="q", answers=[])) is None
    bad = TaskSample(**{**sample.__dict__, "meta": {"evidence_chars": "[[5, 99999]]"}})
    with pytest.raises(DatasetError, match=r"sample 's': meta\.evidence_chars .* does not fit"):
        evidence_texts(bad)
    garbled = TaskSample(**{**sample.__dict__, "meta": {"evidence_chars": "[[1]]"}})
    with pytest.raises(DatasetError, match="is not a list of"):
        evidence_texts(garbled)


def test_locate_orders_pieces_and_skips_what_was_cut() -> None:
    text = "aa BB cc BB dd"
    assert locate(text, ["dd", "BB", "zz", "BB"]) == [(3, 5), (9, 11), (12, 14)]


def test_memory_fills_when_the_evidence_chunk_is_read(tokenizer) -> None:
    trajectory = reference_trajectory(task(), [EVIDENCE], tokenizer, config(64))
    assert trajectory.found == 1 and len(trajectory.steps) >= 3
    states = [parse_update(step.target, MemoryState()).state for step in trajectory.steps]
    first_with = next(i for i, s in enumerate(states) if s.memory != NOTHING_YET)
    assert 0 < first_with < len(states) - 1  # evidence sits in the middle of the document
    assert all(s.plan == PLAN_SEARCHING for s in states[:first_with])
    assert states[-1].memory == EVIDENCE
    assert states[-1].plan == PLAN_DONE
    assert EVIDENCE.split("\n")[1] in trajectory.final[0]["content"]
    # each step's prompt shows the previous step's memory
    assert states[first_with].memory in trajectory.steps[first_with + 1].conversation[0]["content"]


def test_evidence_split_by_a_chunk_boundary_enters_in_parts(tokenizer) -> None:
    long_evidence = "\n".join(f"| field{i} = value{i}" for i in range(12))
    document = f"{FILLER[:180]} {long_evidence} {FILLER[:180]}"
    trajectory = reference_trajectory(task(document), [long_evidence], tokenizer, config(50))
    states = [parse_update(s.target, MemoryState()).state for s in trajectory.steps]
    grew = [s.memory for s in states if s.memory != NOTHING_YET]
    assert len(set(grew)) >= 2  # the memory grew at two steps
    assert grew[-1] == long_evidence  # the parts join back into the piece


def test_an_agent_replying_with_the_targets_sees_the_reference_prompts(tokenizer) -> None:
    trajectory = reference_trajectory(task(), [EVIDENCE], tokenizer, config(64))
    replies = {step.conversation[0]["content"]: step.target for step in trajectory.steps}
    finals: list[str] = []

    class Reference:
        name = "reference"

        def generate(self, conversations, sampling):
            out = []
            for conversation in conversations:
                prompt = conversation[0]["content"]
                if prompt not in replies:
                    finals.append(prompt)
                out.append([Completion(replies.get(prompt, "Therefore, the answer is chemist."))])
            return out

    [[result]] = MemoryAgent(Reference(), tokenizer, config(64)).run(
        [task()], SamplingParams(max_new_tokens=64)
    )
    assert result.n_steps == len(trajectory.steps) and result.failed_steps == 0
    assert finals == [trajectory.final[0]["content"]]
