"""The single-pass prompt: parts, order, multiple choice, documents, the answer line, templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.core.config_loader import load_config
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PROMPTS, PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.evals.extractors import extract_longbench_v2, extract_paper
from qwenlong.evals.prompts import (
    ANSWER_REQUEST,
    CHOICE_ANSWER_REQUEST,
    DOCUMENT_TEMPLATE,
    READ_INSTRUCTION,
    build_messages,
    build_prompt,
    render_context,
)
from qwenlong.evals.run.config import EvalConfig


def _sample(**fields) -> TaskSample:
    base = dict(id="s1", task_type="multihop", question="Who built the bridge?", answers=["Ada"])
    return TaskSample(**{**base, **fields})


def test_parts_appear_in_template_order():
    sample = _sample(context="The bridge was built by Ada.", instruction="Answer with a name.")
    prompt = build_prompt(sample)
    order = [
        READ_INSTRUCTION,
        "<text>\nThe bridge was built by Ada.\n</text>",
        "Question: Who built the bridge?",
        "Answer with a name.",
        ANSWER_REQUEST,
    ]
    positions = [prompt.index(part) for part in order]
    assert positions == sorted(positions)
    assert prompt.endswith(ANSWER_REQUEST)


def _example_line(request: str) -> str:
    """The quoted example the request shows the model, placeholder filled in."""
    return request.split('"')[-2]


def test_answer_line_is_what_the_paper_extractor_reads():
    prompt = build_prompt(_sample(context="x"))
    assert '"Therefore, the answer is (insert answer here)"' in prompt
    reply = "<think>the bridge text names Ada</think>Ada built it. Therefore, the answer is Ada."
    assert extract_paper(reply) == "Ada"


def test_multiple_choice_renders_lettered_options_and_asks_for_the_letter():
    sample = _sample(
        answer_kind="choice",
        context="doc",
        choices=["Ada", "Bo", "Cy", "Di"],
        answers=["A"],
    )
    prompt = build_prompt(sample)
    assert "Question: Who built the bridge?\n\n(A) Ada\n(B) Bo\n(C) Cy\n(D) Di\n\n" in prompt
    assert prompt.endswith(CHOICE_ANSWER_REQUEST)
    example = _example_line(CHOICE_ANSWER_REQUEST)
    assert example == "The correct answer is (B)"
    # Both the official LongBench-V2 extractor and the paper's read the requested line.
    assert extract_longbench_v2(f"<think>...</think>{example}") == "B"
    assert extract_paper(f"<think>...</think>{example}") == "(B)"


def test_documents_are_joined_under_numbered_headings():
    sample = _sample(documents=["first text", "second text"])
    assert render_context(sample) == "Document 1:\nfirst text\n\nDocument 2:\nsecond text"
    assert "<text>\nDocument 1:\nfirst text\n\nDocument 2:\nsecond text\n</text>" in build_prompt(
        sample
    )


def test_context_wins_over_documents_when_both_are_set():
    sample = _sample(context="assembled", documents=["a", "b"])
    assert render_context(sample) == "assembled"


def test_context_argument_replaces_the_document():
    sample = _sample(context="the full long document")
    prompt = build_prompt(sample, context="the cut document")
    assert "<text>\nthe cut document\n</text>" in prompt
    assert "full long" not in prompt
    assert "<text>\n\n</text>" in build_prompt(sample, context="")


def test_build_messages_is_one_user_turn_holding_the_prompt():
    sample = _sample(context="doc")
    assert build_messages(sample) == [{"role": "user", "content": build_prompt(sample)}]


def test_empty_question_names_the_sample():
    with pytest.raises(DatasetError, match=r"sample 's1'.*question"):
        build_prompt(_sample(question="  ", context="doc"))


def test_choice_sample_without_choices_is_rejected():
    with pytest.raises(DatasetError, match=r"sample 's1'.*choices"):
        build_prompt(_sample(answer_kind="choice", context="doc"))


# --- templates -----------------------------------------------------------------------------

GOLDEN = json.loads((Path(__file__).parent / "golden_prompts.json").read_text())["single_pass"]
"""The prompts as the code built them before they became template files (same cases below)."""

GOLDEN_CASES = {
    "plain": (_sample(context="The bridge was built by Ada.\n\nIn 1850."), None),
    "instruction": (_sample(context="doc", instruction="  Answer with a name.  "), None),
    "choice": (
        _sample(context="doc", answer_kind="choice", choices=["Ada", "Bo", "Cy", "Di"]),
        None,
    ),
    "choice_instruction": (
        _sample(
            context="doc", answer_kind="choice", choices=["Ada", "Bo"], instruction="Pick one."
        ),
        None,
    ),
    "text_with_choices": (_sample(context="doc", choices=["x", "y"]), None),
    "documents": (
        _sample(
            documents=["first $text {x}", "second"], question="  Q with $dollar and {brace}?  "
        ),
        None,
    ),
    "cut_context": (_sample(context="full"), "the cut document"),
    "empty_context": (_sample(context="full"), ""),
    "number": (_sample(context="A $5 table.", answer_kind="number", answers=["5"]), None),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_shipped_templates_give_the_prompts_byte_for_byte(case):
    sample, context = GOLDEN_CASES[case]
    assert build_prompt(sample, context=context) == GOLDEN[case]


@pytest.mark.parametrize("name", ["single_pass", "single_pass_choice", "judge"])
def test_every_shipped_template_loads_and_the_phrases_others_search_for_are_in_it(name):
    text = DEFAULT_PROMPTS.template(name).text
    assert DEFAULT_PROMPTS.template(name).spec is PROMPTS.get(name)
    if name != "judge":
        assert text.startswith(READ_INSTRUCTION)
        assert DOCUMENT_TEMPLATE.format(context="$context") in text
        request = CHOICE_ANSWER_REQUEST if name == "single_pass_choice" else ANSWER_REQUEST
        assert text.endswith(request)


def test_a_configured_template_replaces_the_wording(tmp_path):
    longbench_like = tmp_path / "choice.txt"
    longbench_like.write_text(
        "Please read the text.\n\n<text>\n$context\n</text>\n\n"
        "What is the correct answer to this question: $question\nChoices:\n$choices\n\n"
        'Format your response as follows: "The correct answer is (insert answer here)".\n'
    )
    prompts = PromptSet({"single_pass_choice": longbench_like})
    sample = _sample(context="doc", answer_kind="choice", choices=["Ada", "Bo"], answers=["A"])
    assert build_prompt(sample, prompts=prompts) == (
        "Please read the text.\n\n<text>\ndoc\n</text>\n\n"
        "What is the correct answer to this question: Who built the bridge?\nChoices:\n"
        '(A) Ada\n(B) Bo\n\nFormat your response as follows: "The correct answer is (insert '
        'answer here)".'
    )
    free = _sample(context="doc")
    assert build_prompt(free, prompts=prompts) == build_prompt(free)  # other names: shipped


def test_eval_config_checks_its_prompt_files_on_load(tmp_path):
    bad = tmp_path / "judge.txt"
    bad.write_text("Is $prediction the same as $reference?\n")
    config = tmp_path / "eval.yaml"
    config.write_text(
        "model: {backend: hf, model: m}\nbenchmarks: [{name: frames}]\n"
        f"prompts:\n  judge: {bad}\n"
    )
    with pytest.raises(ConfigError, match=r"eval\.yaml:3: prompts: .*judge\.txt:1: unknown "):
        load_config(config, EvalConfig)
    config.write_text("model: {backend: hf, model: m}\nbenchmarks: [{name: frames}]\n")
    assert load_config(config, EvalConfig).prompts == DEFAULT_PROMPTS
