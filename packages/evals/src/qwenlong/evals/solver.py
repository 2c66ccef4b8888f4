"""Single-pass reading: the whole (middle-truncated) document in one prompt, one answer out.

This is how the paper evaluates every benchmark up to 128K tokens (RECIPE.md section 4). The
memory agent, for longer inputs, is another `Solver`; it lives in qwenlong.memagent, which
registers it in `SOLVERS` as "memagent" when imported, since evals may not import memagent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qwenlong.core.errors import BackendError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.records import TaskSample
from qwenlong.core.registry import Registry
from qwenlong.evals.interfaces import Solver, SolverOutput
from qwenlong.evals.prompts import build_messages
from qwenlong.evals.truncation import HFTokenCounter, as_token_counter, fit_context

DEFAULT_MAX_INPUT_TOKENS = 131072
"""Prompt budget: the paper truncates inputs to 128K tokens."""

SOLVERS: Registry[Callable[..., Solver]] = Registry("solver")
"""Solver factories, called as
`factory(model, tokenizer=..., max_input_tokens=..., prompts=..., **options)`, where `prompts`
is the config's `PromptSet` (each solver renders the prompts it sends from it)."""


@SOLVERS.register("single_pass")
class SinglePassSolver:
    """A `Solver` that reads the document in one prompt.

    With a tokenizer (an HF tokenizer or `HFTokenCounter` of the model under test) each document
    is middle-truncated so the rendered prompt fits `max_input_tokens`; without one (a remote
    model whose tokenizer is not at hand) the full document is sent and the server decides.
    """

    name = "single_pass"

    def __init__(
        self,
        model: ChatModel,
        tokenizer: Any | None = None,
        max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS,
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        self.model = model
        self.counter: HFTokenCounter | None = (
            as_token_counter(tokenizer) if tokenizer is not None else None
        )
        self.max_input_tokens = max_input_tokens
        self.prompts = prompts

    def solve(
        self, samples: Sequence[TaskSample], sampling: SamplingParams
    ) -> list[list[SolverOutput]]:
        """`sampling.n` outputs per sample, from one batched `generate` call."""
        if not samples:
            return []
        conversations = [build_messages(s, self._context(s), self.prompts) for s in samples]
        completions = self.model.generate(conversations, sampling)
        if len(completions) != len(samples):
            raise BackendError(
                f"model {self.model.name!r} returned {len(completions)} completion lists for "
                f"{len(samples)} prompts"
            )
        return [
            [
                SolverOutput(
                    text=c.text,
                    finish_reason=c.finish_reason,
                    output_tokens=len(c.token_ids) if c.token_ids else None,
                )
                for c in per_sample
            ]
            for per_sample in completions
        ]

    def _context(self, sample: TaskSample) -> str | None:
        """The truncated document, or None (the full document) without a tokenizer."""
        if self.counter is None:
            return None
        return fit_context(sample, self.counter, self.max_input_tokens, self.prompts)
