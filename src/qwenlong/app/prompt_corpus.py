"""The words of the project's own prompts, for training a tiny model's tokenizer.

A tiny model's tokenizer trained on a synthesized corpus alone (infoboxes, say) has never seen
the instructions it will be prompted with: the single-pass request to answer as "Therefore, the
answer is ...", or the memory agent's update rules, which then cost two to three tokens a word.
A real model's vocabulary holds such English words whole. `prompt_texts` renders every prompt
kind around placeholder content, and `qwenlong models tiny --learn-prompts` adds them to the
tokenizer's training texts, repeated so that their words are merged like a corpus's frequent
words. On the infobox world of `experiments/synth-short-cpu.yaml` (4,096-token vocabulary) that
shortens the memory agent's update prompt 2.2x (780 -> 350 tokens) and a single-pass prompt by
a fifth (414 -> 332 tokens, of which the context is ~240 either way).

It lives in the app layer because it reads the prompts of evals and memagent, which core (where
the tokenizer is trained) must not import.
"""

from __future__ import annotations

from qwenlong.core.records import TaskSample
from qwenlong.evals.prompts import build_messages
from qwenlong.memagent.chunking import text_reader
from qwenlong.memagent.interfaces import AgentTask, Chunk, MemoryState
from qwenlong.memagent.prompts import EMPTY_MEMORY, EMPTY_PLAN, final_messages, update_messages
from qwenlong.memagent.reference import NOTHING_YET, PLAN_DONE, PLAN_SEARCHING, render_update
from qwenlong.rl.sft_data import answer_is_target, choice_target

PROMPT_REPEATS = 200
"""Copies of the prompt texts in the tokenizer's training data. BPE merges the most frequent
pairs first; 200 copies put the prompts' words well above a few-thousand-document corpus's
names and numbers, so they are merged early. Our choice."""


def prompt_texts() -> list[str]:
    """One rendering of every prompt kind and answer form, around placeholder content."""
    question = "What is the occupation of the person?"
    reading = TaskSample(id="p", task_type="reading", question=question, answers=["x"], context="")
    choice = TaskSample(
        id="c",
        task_type="mc",
        question=question,
        answers=["A"],
        answer_kind="choice",
        choices=["one", "two", "three", "four"],
        context="",
    )
    task = AgentTask(id="t", question=question, read=text_reader(""))
    chunk = Chunk(index=0, text="", n_tokens=0, start_token=0)
    texts = [build_messages(sample)[0]["content"] for sample in (reading, choice)]
    texts += [
        update_messages(task, MemoryState(), chunk, memory_tokens=1024, plan_tokens=128)[0][
            "content"
        ],
        final_messages(task, MemoryState(NOTHING_YET))[0]["content"],
        render_update(MemoryState(NOTHING_YET, PLAN_SEARCHING)),
        render_update(MemoryState(EMPTY_MEMORY, PLAN_DONE)),
        EMPTY_PLAN,
        answer_is_target(reading),
        choice_target(choice),
    ]
    return texts


def prompt_corpus(repeats: int = PROMPT_REPEATS) -> list[str]:
    """`prompt_texts()` repeated `repeats` times: extra tokenizer training texts."""
    return prompt_texts() * repeats
