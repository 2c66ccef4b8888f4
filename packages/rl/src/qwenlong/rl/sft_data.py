"""What the SFT warm start trains on: each sample's prompts and the answer text in the form the
reward reads (qwenlong.rl.sft runs the training). The target of each sample is:

| answer kind | target                                   | read by                          |
|-------------|------------------------------------------|----------------------------------|
| text        | `Therefore, the answer is {answer}.`     | cover exact match after "answer is" |
| number      | `Therefore, the answer is {answer}.`     | numeric comparison after "answer is" |
| choice      | `The correct answer is ({letter})`       | LongBench-V2's exact line        |
| sequence    | the gold text verbatim                   | MRCR: prefix gate, then ratio    |

followed by the end-of-turn token, so the model also learns to stop. For a thinking model
(`think: true`) the answer comes after an empty reasoning block: `</think>\\n\\n` when the chat
template already opened `<think>` in the prompt (Qwen3-Thinking-2507), else
`<think>\\n\\n</think>\\n\\n`; the rewards read the text after the last `</think>`. Samples
without a gold answer (empty SQL results) have no target and are left out.

Which prompts the targets answer depends on the rollout kind the run trains (`SFT_EXAMPLES`):
single pass trains the single-pass prompt; the memory agent trains every update step toward a
reference memory and the final prompt toward the answer (qwenlong.rl.memagent_sft), so the warm
start teaches the model each sequence its rollouts will make it write.

The loss is the summed token NLL of the target tokens divided by the batch's target-token
count (`Policy.sft_step`), the same global normalisation as the RL loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from qwenlong.core.records import Conversation, TaskSample
from qwenlong.core.registry import Registry
from qwenlong.evals.reasoning import THINK_END, THINK_START
from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder

if TYPE_CHECKING:
    from qwenlong.rl.config import TrainConfig

TargetFn = Callable[[TaskSample], str]
"""The answer text a sample is trained on (without reasoning or end-of-turn)."""

SFT_TARGETS: Registry[TargetFn] = Registry("SFT target format")


@SFT_TARGETS.register("text")
@SFT_TARGETS.register("number")
def answer_is_target(sample: TaskSample) -> str:
    """The closing line the prompt requests and the "answer is" extractor reads."""
    return f"Therefore, the answer is {sample.answers[0]}."


@SFT_TARGETS.register("choice")
def choice_target(sample: TaskSample) -> str:
    """LongBench-V2's exact line, the letter in parentheses."""
    return f"The correct answer is ({sample.answers[0]})"


@SFT_TARGETS.register("sequence")
def verbatim_target(sample: TaskSample) -> str:
    """MRCR grades the response itself: the gold text, nothing around it."""
    return sample.answers[0]


def think_prefix(rendered_prompt: str) -> str:
    """The empty reasoning block a thinking model's answer starts with, given its prompt."""
    if rendered_prompt.rstrip().endswith(THINK_START):
        return f"{THINK_END}\n\n"
    return f"{THINK_START}\n\n{THINK_END}\n\n"


def sft_target(sample: TaskSample) -> str:
    """The answer text `sample` is trained on (see the module table); a thinking model's
    empty reasoning block is put before it by `sft_batch`."""
    return SFT_TARGETS.get(sample.answer_kind)(sample)


Example = tuple[Conversation, str]
"""A prompt and the target text the model is trained to answer it with (before any reasoning
prefix and the end-of-turn token)."""


class ExampleSource(Protocol):
    """How the warm start turns samples into training examples, one per sequence the rollout
    kind makes the model answer."""

    def usable(self, sample: TaskSample) -> bool:
        """Whether the sample can be trained on at all (it is left out of the draw if not)."""
        ...

    def examples(self, samples: Sequence[TaskSample]) -> list[Example]: ...


class SinglePassExamples:
    """The single-pass prompt (document cut to `max_input_tokens`) and the answer target."""

    def __init__(self, prompts: PromptBuilder, max_input_tokens: int) -> None:
        self.prompts, self.max_input_tokens = prompts, max_input_tokens

    def usable(self, sample: TaskSample) -> bool:
        return bool(sample.answers)

    def examples(self, samples: Sequence[TaskSample]) -> list[Example]:
        conversations = self.prompts.conversations(samples, self.max_input_tokens)
        targets = [sft_target(s) for s in samples]
        return list(zip(conversations, targets, strict=True))


ExampleSourceFactory = Callable[["TrainConfig", PromptBuilder, int], ExampleSource]
"""(run config, prompt builder, max input tokens) -> the examples of a rollout kind."""

SFT_EXAMPLES: Registry[ExampleSourceFactory] = Registry("SFT examples of a rollout kind")
SFT_EXAMPLES.add("single_pass", lambda _, prompts, limit: SinglePassExamples(prompts, limit))
SFT_EXAMPLES.add_lazy("memagent", "qwenlong.rl.memagent_sft:MemAgentExamples")


def sft_batch(examples: Sequence[Example], encoder: ChatEncoder, think: bool) -> PackedBatch:
    """Pack each example's prompt and target; the loss mask covers the target tokens (and the
    empty reasoning block before them when `think`)."""
    prompt_ids = encoder.prompt_ids([conversation for conversation, _ in examples])
    targets = [
        encoder.answer_ids((think_prefix(encoder.render(c)) if think else "") + target)
        for c, target in examples
    ]
    return PackedBatch.from_sequences(prompt_ids, targets)
