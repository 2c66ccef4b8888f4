"""SFT warm start: cross-entropy on the synthesized answers, so RL starts from a rewardable model.

A randomly initialised tiny model never writes "Therefore, the answer is ...", so every reward
is 0, every group has zero variance and GRPO has nothing to learn from. A short supervised phase
on the training data's own answers, written exactly in the form the reward reads, gives RL a
partly competent start. The target of each sample is:

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

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.core.registry import Registry
from qwenlong.core.rundir import RunDir
from qwenlong.evals.reasoning import THINK_END, THINK_START
from qwenlong.rl.batching import derive_seed
from qwenlong.rl.config import SFTConfig, TrainConfig
from qwenlong.rl.interfaces import PackedBatch, StepStats
from qwenlong.rl.prompting import ChatEncoder, PromptBuilder
from qwenlong.rl.runtime import components, make_policy
from qwenlong.rl.sampler import SamplerConfig, TaskBalancedSampler
from qwenlong.rl.session import RunPlan, evaluate_plan_heldout
from qwenlong.rl.stages import select_stage_data

SFT_DIR = "sft"
"""RUN/sft: metrics.jsonl, result.json, optimizer.pt and model/ (the warm-started policy in HF
format, from which RL's policy and rollout engines load). model/ appears last, atomically: its
presence means the warm start is done."""
CONTROL_DIR = "sft_control"
"""RUN/sft_control/metrics.jsonl: the SFT control's steps."""

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


class SFTPolicy(Protocol):
    """What the warm start needs from a policy: `TorchPolicy` or a data-parallel group."""

    def sft_step(self, batch: PackedBatch, global_tokens: int) -> StepStats: ...


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


ExampleSourceFactory = Callable[[TrainConfig, PromptBuilder, int], ExampleSource]
"""(run config, prompt builder, max input tokens) -> the examples of a rollout kind."""

SFT_EXAMPLES: Registry[ExampleSourceFactory] = Registry("SFT examples of a rollout kind")
SFT_EXAMPLES.add("single_pass", lambda _, prompts, limit: SinglePassExamples(prompts, limit))
SFT_EXAMPLES.add_lazy("memagent", "qwenlong.rl.memagent_sft:MemAgentExamples")


@dataclass
class SFTResult:
    """What the warm start did."""

    steps: int
    seconds: float
    final_loss: float
    tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "seconds": self.seconds,
            "final_loss": self.final_loss,
            "tokens": self.tokens,
        }


def sft_batch(examples: Sequence[Example], encoder: ChatEncoder, think: bool) -> PackedBatch:
    """Pack each example's prompt and target; the loss mask covers the target tokens (and the
    empty reasoning block before them when `think`)."""
    prompt_ids = encoder.prompt_ids([conversation for conversation, _ in examples])
    targets = [
        encoder.answer_ids((think_prefix(encoder.render(c)) if think else "") + target)
        for c, target in examples
    ]
    return PackedBatch.from_sequences(prompt_ids, targets)


def sft_warm_start(
    config: SFTConfig,
    policy: SFTPolicy,
    samples: Sequence[TaskSample],
    source: ExampleSource,
    encoder: ChatEncoder,
    *,
    sampler: SamplerConfig,
    seed: int,
    log: Callable[[int, Mapping[str, Any]], None] | None = None,
    steps: int | None = None,
    time_budget_s: float | None = None,
) -> SFTResult:
    """Run `steps` (default `config.steps`) SFT steps, or fewer when `time_budget_s` runs out.

    Batches of `config.batch_size` samples come from the task-balanced sampler (same task
    list as RL), so every task is learned; `source` makes them into examples (one per sample
    in single pass, one per memory step and answer for the memory agent). `log(step, metrics)`
    receives the step's loss, grad norm and token count every `config.log_every` steps and at
    the last one.
    """
    usable = [s for s in samples if source.usable(s)]
    draw = TaskBalancedSampler(
        usable, sampler.model_copy(update={"batch_size": config.batch_size}), seed, "sft data"
    )
    total = steps if steps is not None else config.steps
    start = time.perf_counter()
    stats: StepStats | None = None
    tokens, done, logged = 0, 0, 0
    for step in range(1, total + 1):
        if time_budget_s is not None and time.perf_counter() - start >= time_budget_s:
            break
        batch = sft_batch(source.examples(draw.next_batch()), encoder, config.think)
        stats = policy.sft_step(batch, int(batch.loss_mask.sum()))
        tokens, done = tokens + stats.tokens, step
        if log is not None and step % config.log_every == 0:
            log(step, _record(stats, tokens, time.perf_counter() - start))
            logged = step
    elapsed = time.perf_counter() - start
    if log is not None and stats is not None and logged != done:
        log(done, _record(stats, tokens, elapsed))
    return SFTResult(done, elapsed, stats.loss if stats is not None else float("nan"), tokens)


def _record(stats: StepStats, tokens: int, elapsed: float) -> dict[str, Any]:
    return {
        "loss": stats.loss,
        "grad_norm": stats.grad_norm,
        "tokens": stats.tokens,
        "loss_tokens": stats.loss_tokens,
        "elapsed_s": elapsed,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else None,
    }


def warm_start_model(config: TrainConfig, plan: RunPlan) -> str:
    """The model directory RL starts from: `config.model`, or RUN/sft/model after the warm start.

    The warm start runs only on a fresh run without a finished one; a run resumed from an RL
    checkpoint takes its weights from the checkpoint whatever this returns.
    """
    sft = config.sft
    if sft is None:
        return config.model
    folder = plan.out / SFT_DIR
    model_dir = folder / "model"
    if (model_dir / "config.json").is_file():
        return str(model_dir)
    if plan.checkpoint is not None:
        return config.model
    shutil.rmtree(folder, ignore_errors=True)
    policy = make_policy(config, config.model, lr=sft.lr)
    try:
        with RunDir(folder) as run:
            result = _run_sft(config, sft, plan, policy, run, "sft", None)
        staging = folder / ".model-tmp"
        policy.save_pretrained(staging)
        torch.save({"ranks": policy.optimizer_state()}, folder / "optimizer.pt")
    finally:
        policy.shutdown()
    (folder / "result.json").write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
    staging.rename(model_dir)
    return str(model_dir)


def run_sft_control(
    config: TrainConfig, plan: RunPlan, summary: Mapping[str, Any]
) -> dict[str, Any]:
    """Continue SFT from the warm start for the wall time RL took; its held-out reward.

    Starts from RUN/sft/model with the warm start's optimizer state, so the control is "the
    same compute spent on more SFT" rather than a restart. It runs on workers of its own,
    started once RL's are stopped: on a machine whose CPUs RL's actors reserved, a third
    actor would wait for them forever. RL's final weights are in its last checkpoint.
    """
    sft = config.sft
    if sft is None:
        raise ConfigError("the SFT control needs an sft section")
    folder = plan.out / SFT_DIR
    budget = float(summary["rl_seconds"])
    control_dir = plan.out / CONTROL_DIR
    shutil.rmtree(control_dir, ignore_errors=True)
    with components(config, folder / "model", plan.out, policy_lr=sft.lr) as parts:
        optimizer = torch.load(folder / "optimizer.pt", weights_only=True)
        parts.policy.load_optimizer_state(optimizer["ranks"])
        with RunDir(control_dir) as run:
            result = _run_sft(config, sft, plan, parts.policy, run, "sft-control", budget)
        record: dict[str, Any] = {"budget_s": budget, **result.as_dict()}
        if plan.heldout:
            parts.rollout.load_weights(parts.policy.export_weights())
            heldout = evaluate_plan_heldout(config, plan, parts)
            (control_dir / "heldout.json").write_text(json.dumps(heldout), encoding="utf-8")
            record["heldout"] = heldout
    return record


def _run_sft(
    config: TrainConfig,
    sft: SFTConfig,
    plan: RunPlan,
    policy: SFTPolicy,
    run: RunDir,
    stream: str,
    budget: float | None,
) -> SFTResult:
    """SFT on the first stage's data (its static filters), at its input limit; with a time
    budget the step count is open-ended."""
    first = plan.stages[0].config
    data = first.data.model_copy(update={"retrospective": None, "pass_rates": None})
    samples, _ = select_stage_data(plan.train, data, None, plan.prompts.count_tokens)
    limit = sft.max_input_tokens or first.max_input_tokens
    source = SFT_EXAMPLES.get(config.rollout.kind)(config, plan.prompts, limit)
    return sft_warm_start(
        sft,
        policy,
        samples,
        source,
        plan.encoder,
        sampler=config.sampler,
        seed=derive_seed(config.seed, stream),
        log=run.log,
        steps=None if budget is None else 2**62,
        time_budget_s=budget,
    )
