"""Query split: rules for the known templates, the no-empty-question guard, the LLM split."""

from __future__ import annotations

import pytest

from qwenlong.core.records import Completion
from qwenlong.evals.prompts import ANSWER_REQUEST, CHOICE_ANSWER_REQUEST
from qwenlong.memagent.interfaces import QuerySplit
from qwenlong.memagent.query import QUERY_SPLITTERS, llm_split_queries, split_query


def test_evals_answer_request_goes_to_instruction():
    split = split_query(f"Where was the author of Briotpa born?\n\n{ANSWER_REQUEST}")
    assert split == QuerySplit(
        "Where was the author of Briotpa born?", ANSWER_REQUEST, (), ("answer_request",)
    )


def test_answer_with_sentence_after_a_question_on_the_same_line():
    split = split_query("Who founded the orchard of Thiemoth? Answer with a single name.")
    assert split.question == "Who founded the orchard of Thiemoth?"
    assert split.instruction == "Answer with a single name."
    assert split.rules == ("answer_with",)


def test_several_format_sentences_keep_their_order():
    split = split_query(
        "What was the total revenue in 2021?\n\nPlease answer in millions of dollars. "
        "Do not include any other text."
    )
    assert split.question == "What was the total revenue in 2021?"
    assert split.instruction == (
        "Please answer in millions of dollars. Do not include any other text."
    )


def test_mrcr_style_request_keeps_the_task_and_drops_the_format_line():
    split = split_query(
        "Prepend k2J to the 2nd (1 indexed) poem about tapirs. "
        "Do not include any other text in your response."
    )
    assert split.question == "Prepend k2J to the 2nd (1 indexed) poem about tapirs."
    assert split.instruction == "Do not include any other text in your response."


def test_multiple_choice_block_becomes_choices_with_its_header_removed():
    query = (
        "Which city hosted the fair?\nChoices:\n(A) Paris\n(B) Rome\n(C) Oslo\n(D) Bern\n"
        + CHOICE_ANSWER_REQUEST
    )
    split = split_query(query)
    assert split.question == "Which city hosted the fair?"
    assert split.choices == ("Paris", "Rome", "Oslo", "Bern")
    assert split.instruction == CHOICE_ANSWER_REQUEST
    assert split.rules == ("answer_request", "choices")


def test_option_letters_must_run_in_order_from_a():
    split = split_query("Pick one.\n(B) left\n(C) right")
    assert split.choices == ()
    split = split_query("Which?\nA. left\nB. right\nD. wrong letter")
    assert split.choices == ("left", "right")
    assert "D. wrong letter" in split.question


def test_longbench_format_line_is_an_instruction_even_before_the_question():
    split = split_query(
        'Format your response as follows: "The correct answer is (insert answer here)". '
        "In which year was the town founded?"
    )
    assert split.question == "In which year was the town founded?"
    assert split.instruction.startswith("Format your response as follows")


def test_questions_that_merely_start_with_answer_stay_whole():
    query = "Answer the following question: who is the mayor of Kaot?"
    assert split_query(query) == QuerySplit(query)


def test_a_query_that_is_only_instructions_is_kept_whole():
    split = split_query("Answer with yes or no.")
    assert split.question == "Answer with yes or no."
    assert split.instruction == ""
    assert split.rules == ("none_left",)


class ReplyModel:
    """Replies with a fixed text per query index; records what it was sent."""

    name = "split-stub"

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.calls = []

    def generate(self, conversations, sampling):
        self.calls.append((list(conversations), sampling))
        return [[Completion(text=self.replies[i])] for i in range(len(conversations))]

    def close(self) -> None:
        pass


def test_llm_split_uses_a_verbatim_reply_and_falls_back_on_an_invented_one():
    queries = [
        "Which harbour closed first, and when? Keep it short.",
        "Who wrote Zerpado? Answer with a single name.",
    ]
    model = ReplyModel(
        [
            "<think>hm</think><question>Which harbour closed first, and when?</question>"
            "<format>Keep it short.</format>",
            "<question>Name the author of a book.</question><format></format>",
        ]
    )
    splits = llm_split_queries(queries, model, max_new_tokens=64)
    assert len(model.calls) == 1
    assert model.calls[0][1].temperature == 0.0 and model.calls[0][1].max_new_tokens == 64
    assert splits[0] == QuerySplit(
        "Which harbour closed first, and when?", "Keep it short.", (), ("llm",)
    )
    # the second reply is not in the query: the rules decide, and the trace says so
    assert splits[1].question == "Who wrote Zerpado?"
    assert splits[1].instruction == "Answer with a single name."
    assert splits[1].rules == ("answer_with", "llm_fallback")


def test_llm_split_takes_options_by_rule_before_asking():
    model = ReplyModel(["<question>Which one?</question><format></format>"])
    [split] = llm_split_queries(["Which one?\n(A) red\n(B) blue"], model, 32)
    sent = model.calls[0][0][0][0]["content"]
    assert "(A) red" not in sent
    assert split.choices == ("red", "blue") and split.rules == ("llm",)


def test_splitter_registry_names_and_the_none_splitter():
    assert QUERY_SPLITTERS.names() == ["llm", "none", "rules"]
    [split] = QUERY_SPLITTERS.get("none")([" Who? Answer with a name. "], ReplyModel([]), 8)
    assert split == QuerySplit("Who? Answer with a name.")
    with pytest.raises(Exception, match="did you mean 'rules'"):
        QUERY_SPLITTERS.get("rule")
