"""The single-pass solver: one batched call, truncated prompts, outputs in order."""

from __future__ import annotations

import pytest

from qwenlong.core.errors import BackendError, ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.prompt_set import PromptSet
from qwenlong.core.records import Completion, TaskSample
from qwenlong.core.tokenizer_train import synthetic_corpus
from qwenlong.evals.prompts import build_prompt
from qwenlong.evals.solver import SOLVERS, SinglePassSolver


class StubModel:
    """Answers every conversation with `n` numbered completions and records what it was sent."""

    name = "stub"

    def __init__(self, drop_one: bool = False) -> None:
        self.calls: list[tuple[list, SamplingParams]] = []
        self.drop_one = drop_one

    def generate(self, conversations, sampling):
        self.calls.append((list(conversations), sampling))
        out = [
            [
                Completion(text=f"answer {i}.{k}", token_ids=[1] * (k + 2), finish_reason="length")
                for k in range(sampling.n)
            ]
            for i in range(len(conversations))
        ]
        return out[:-1] if self.drop_one else out

    def close(self) -> None:
        pass


def _sample(sid: str, context: str) -> TaskSample:
    return TaskSample(id=sid, task_type="reading", question="Q?", answers=["a"], context=context)


def test_one_generate_call_for_all_samples_with_n_outputs_each():
    model = StubModel()
    samples = [_sample("a", "first document"), _sample("b", "second document")]
    sampling = SamplingParams(n=3, max_new_tokens=16)
    outputs = SinglePassSolver(model).solve(samples, sampling)
    assert len(model.calls) == 1
    conversations, sent = model.calls[0]
    assert sent is sampling
    assert [c[0]["content"] for c in conversations] == [build_prompt(s) for s in samples]
    assert [[o.text for o in per] for per in outputs] == [
        ["answer 0.0", "answer 0.1", "answer 0.2"],
        ["answer 1.0", "answer 1.1", "answer 1.2"],
    ]
    assert outputs[0][2].output_tokens == 4 and outputs[0][2].finish_reason == "length"
    assert outputs[1][0].trace == []


def test_no_samples_means_no_call():
    model = StubModel()
    assert SinglePassSolver(model).solve([], SamplingParams()) == []
    assert model.calls == []


def test_with_a_tokenizer_every_prompt_fits_the_budget(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_text = "\n".join(synthetic_corpus(seed=3, n_paragraphs=200))
    model = StubModel()
    solver = SinglePassSolver(model, tokenizer=tokenizer, max_input_tokens=700)
    solver.solve([_sample("long", long_text), _sample("short", "tiny doc")], SamplingParams())
    conversations, _ = model.calls[0]
    lengths = [
        len(tokenizer.apply_chat_template(c, add_generation_prompt=True)["input_ids"])
        for c in conversations
    ]
    assert 697 <= lengths[0] <= 700
    assert lengths[1] < 700 and "tiny doc" in conversations[1][0]["content"]


def test_a_short_completion_list_is_a_backend_error():
    with pytest.raises(BackendError, match="1 completion lists for 2 prompts"):
        SinglePassSolver(StubModel(drop_one=True)).solve(
            [_sample("a", "x"), _sample("b", "y")], SamplingParams()
        )


def test_registry_builds_the_single_pass_solver():
    factory = SOLVERS.get("single_pass")
    solver = factory(StubModel(), max_input_tokens=1000)
    assert solver.name == "single_pass" and solver.max_input_tokens == 1000
    with pytest.raises(ConfigError, match=r"unknown solver 'single-pass'.*did you mean"):
        SOLVERS.get("single-pass")


def test_end_to_end_on_the_tiny_model(tiny_chat_model, tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_text = "\n".join(synthetic_corpus(seed=5, n_paragraphs=100))
    solver = SinglePassSolver(tiny_chat_model, tokenizer=tokenizer, max_input_tokens=256)
    sampling = SamplingParams(max_new_tokens=4, temperature=0.0, n=1)
    outputs = solver.solve([_sample("a", long_text), _sample("b", "short doc")], sampling)
    assert [len(per) for per in outputs] == [1, 1]
    for [output] in outputs:
        assert isinstance(output.text, str)
        assert output.output_tokens is None or 1 <= output.output_tokens <= 4
        assert output.finish_reason in ("stop", "length")


def test_a_configured_template_is_sent_and_still_fits_the_budget(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    template = tmp_path / "reading.txt"
    preamble = "Answer from this long text only. " * 15
    template.write_text(f"{preamble}\n\n$context\n\nQuestion: $question\n")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_text = "\n".join(synthetic_corpus(seed=3, n_paragraphs=200))
    model = StubModel()
    prompts = PromptSet({"single_pass": template})
    solver = SinglePassSolver(model, tokenizer=tokenizer, max_input_tokens=700, prompts=prompts)
    solver.solve([_sample("long", long_text)], SamplingParams())
    [conversation], _ = model.calls[0]
    assert conversation[0]["content"].startswith(preamble)
    assert conversation[0]["content"].endswith("\n\nQuestion: Q?")
    length = len(
        tokenizer.apply_chat_template(conversation, add_generation_prompt=True)["input_ids"]
    )
    assert 697 <= length <= 700
