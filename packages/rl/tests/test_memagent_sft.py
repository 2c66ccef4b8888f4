"""The memory agent's warm start trains every sequence its rollout makes the model write: the
reference update steps over the same chunks, then the answer from the reference memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.records import TaskSample
from qwenlong.memagent.interfaces import MemoryState
from qwenlong.memagent.parse import parse_update
from qwenlong.memagent.prompts import FINAL_INTRO
from qwenlong.memagent.reference import NOTHING_YET
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.memagent_sft import MemAgentExamples
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder
from qwenlong.rl.sft_data import SFT_EXAMPLES, sft_batch

FILLER = " ".join(f"record {i} is unrelated." for i in range(30))
EVIDENCE = "Item 7 has the code k7."


def sample(sid: str, evidence: bool = True) -> TaskSample:
    context = f"{FILLER}\n\n{EVIDENCE}\n\n{FILLER}"
    start = context.index(EVIDENCE)
    meta = {"evidence_chars": json.dumps([[start, start + len(EVIDENCE)]])} if evidence else {}
    return TaskSample(
        id=sid,
        task_type="reading",
        question="What is the code of item 7?",
        answers=["k7"],
        context=context,
        meta=meta,
    )


def config(tiny_model_dir: Path) -> TrainConfig:
    return load_config_dict(
        {
            "model": str(tiny_model_dir),
            "data": {"train": ["unused"]},
            "steps": 1,
            "rollout": {
                "kind": "memagent",
                "max_input_tokens": 2048,
                "memagent": {"chunk_tokens": 64, "memory_tokens": 128, "plan_tokens": 16},
            },
        },
        TrainConfig,
        "test",
    )


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_examples_are_the_reference_steps_then_the_answer(tiny_model_dir: Path, tokenizer) -> None:
    prompts = PromptBuilder(tokenizer)
    source = SFT_EXAMPLES.get("memagent")(config(tiny_model_dir), prompts, 2048)
    assert isinstance(source, MemAgentExamples)
    assert source.usable(sample("a")) and not source.usable(sample("b", evidence=False))
    examples = source.examples([sample("a"), sample("c")])
    per_sample = len(examples) // 2
    assert per_sample >= 3  # several update steps and the final answer
    first = examples[:per_sample]
    *steps, (final_prompt, answer) = first
    assert answer == "Therefore, the answer is k7."
    assert (
        final_prompt[0]["content"].startswith(FINAL_INTRO)
        and EVIDENCE in final_prompt[0]["content"]
    )
    memories = [parse_update(target, MemoryState()).state.memory for _, target in steps]
    assert memories[0] == NOTHING_YET and memories[-1] == EVIDENCE
    for (conversation, _), memory in zip(steps[1:], memories, strict=False):
        assert memory in conversation[0]["content"]  # each prompt carries the last memory
    batch = sft_batch(examples, ChatEncoder(tokenizer), think=False)
    assert batch.num_sequences == len(examples)
    last = batch.input_ids[batch.cu_seqlens[per_sample - 1] : batch.cu_seqlens[per_sample]]
    mask = batch.loss_mask[batch.cu_seqlens[per_sample - 1] : batch.cu_seqlens[per_sample]]
    assert tokenizer.decode(last[mask]) == "Therefore, the answer is k7.<|im_end|>"


def test_a_truncated_document_keeps_the_evidence_that_survived(
    tiny_model_dir: Path, tokenizer
) -> None:
    prompts = PromptBuilder(tokenizer)
    source = MemAgentExamples(config(tiny_model_dir), prompts, 200)
    examples = source.examples([sample("a")])
    cut = prompts.context(sample("a"), 200)
    assert EVIDENCE not in cut  # the middle, where the evidence sits, was cut
    memories = [parse_update(t, MemoryState()).state.memory for _, t in examples[:-1]]
    assert memories and set(memories) == {NOTHING_YET}
