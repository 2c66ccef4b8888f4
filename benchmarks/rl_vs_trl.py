"""RL training throughput on the CPU: this trainer against TRL's GRPOTrainer, same workload.

    uv run python benchmarks/rl_vs_trl.py [--setting short|long] [--steps N] [--prompts N]
        [--group G] [--max-new-tokens N] [--threads 1] [--ray]

Two settings (SETTINGS below; any flag overrides): `short`, 8 prompts of ~200-300 tokens x G = 4;
`long`, the paper's regime where the prompt is nearly all of the tokens: 4 prompts of ~2K
tokens x G = 8, and TRL, which would otherwise run the 32 sequences of ~2K tokens as one padded
batch, takes them one group (8 sequences) per micro-batch, the gradient accumulated over the
step (ours bounds a micro-batch by `policy.torch.micro_batch_tokens`, 8192 padded tokens).

Both trainers get the same tiny Qwen3-MoE (qwenlong.core.tiny_model, fresh in a temp dir) and
its tokenizer, the same generated TaskSamples (four task types, a handful of fact lines each,
rendered by qwenlong.evals.prompts.build_messages through the same chat template), the same
reward (qwenlong.rl.rewards.RewardFn, the evals scorer of each sample), group size, prompts per
step, response limit, temperature 0.7, top-p 0.95, lr, float32, no KL, the DAPO token-level
loss, one optimizer step per rollout batch, and the same number of torch threads. Ours runs with
`ray.enabled: false` (everything in this process, like TRL), plain group advantages and AEPO
off, so both do the same algorithmic work; `--ray` adds a run with Ray actors.

What is counted: tokens per step = prompt tokens + completion tokens (end-of-turn included,
padding excluded) of every sequence the optimizer step trained on, a prompt counted once per
sequence in both trainers however often it ran through the model (ours runs a group's prompt
once); tokens/s = the sum of that over the timed steps / the sum of their wall times. The first
step is warm-up and not timed.
Ours: a step is `rl_step` (sampling to weight sync; logging and checkpoints excluded), split
into generate / score / train / sync by the trainer's own phase timer. TRL: a step is
`on_step_begin` to `on_step_end` of a TrainerCallback (generation, scoring, forward, backward,
optimizer; the dataloader fetch and logging excluded), split by timers around `_generate`
(generate) and the rest of `_generate_and_score_completions` (score: rewards, advantages,
padding); train is the remainder. TRL has no sync phase (it generates with the trained model).
Ours' train phase is further split into its no-grad log-prob/entropy pass (skipped when
strictly on-policy: the hf engine's entropies stand in, qwenlong.rl.rollout_stats) and the
update (each prompt run once for its G responses, qwenlong.rl.shared_prefix);
TRL's padded tensor size per step is reported too (it left-pads every prompt to the batch's
longest prompt and every completion to the longest completion).
Prints a table, then ONE JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import read_metrics
from qwenlong.evals.prompts import build_messages
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.rewards import RewardConfig, RewardFn

SETTINGS: dict[str, dict[str, Any]] = {
    "short": {"prompts": 8, "group": 4, "lines": (4, 8), "trl_micro_batch": None},
    "long": {"prompts": 4, "group": 8, "lines": (110, 130), "trl_micro_batch": 8},
}
"""Workload presets: prompts per step, G, fact lines per prompt (14-28 tokens each by task type,
on ~90 of template and question: 4-8 lines make prompts of ~200-300 tokens, 110-130 lines of
~1.4K-2.8K, 2K on average), and TRL's sequences per micro-batch (None: the whole step)."""
TASKS = ("reading", "mc", "numerical", "dialogue_memory")
"""Task types of the generated data; the sampler balances over them (two prompts each at 8)."""
LR = 1e-4
"""Learning rate of both trainers (the tiny model's, as in experiments/rl-tiny-cpu.yaml)."""
TEMPERATURE, TOP_P = 0.7, 0.95
"""Rollout sampling of both trainers (the paper's values)."""
SYLLABLES = ("ka", "lo", "mi", "ren", "so", "ta", "vel", "du", "po", "ni", "rix", "zu")
COLOURS = ("red", "blue", "green", "gold")


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def make_samples(count: int, seed: int = 0, lines: tuple[int, int] = (4, 8)) -> list[TaskSample]:
    """`count` samples per task type, each with `lines` fact lines (an inclusive range).

    reading: key-value retrieval; mc: the colour of a named item among four choices; numerical:
    the sum of two listed counts; dialogue_memory: repeat a line (dense MRCR ratio, so even a
    random model's output earns a varying reward and the update has a gradient).
    """
    rng = random.Random(seed)
    samples = []
    for i in range(count):
        names = [_name(rng) for _ in range(rng.randint(*lines))]
        codes = [f"{rng.choice(SYLLABLES)}{rng.randint(10, 99)}" for _ in names]
        colours = [rng.choice(COLOURS) for _ in names]
        counts = [rng.randint(2, 40) for _ in names]
        target = rng.randrange(len(names))
        other = (target + 1) % len(names)
        samples += [
            TaskSample(
                id=f"read-{i}",
                task_type="reading",
                question=f"What is the code of {names[target]}?",
                answers=[codes[target]],
                context="\n".join(
                    f"The code of {n} is {c}." for n, c in zip(names, codes, strict=True)
                ),
            ),
            TaskSample(
                id=f"mc-{i}",
                task_type="mc",
                question=f"What colour is {names[target]}?",
                answers=["ABCD"[COLOURS.index(colours[target])]],
                answer_kind="choice",
                choices=list(COLOURS),
                context="\n".join(
                    f"{n} is painted {c}." for n, c in zip(names, colours, strict=True)
                ),
            ),
            TaskSample(
                id=f"num-{i}",
                task_type="numerical",
                question=f"How many stones do {names[target]} and {names[other]} hold together?",
                answers=[str(counts[target] + counts[other])],
                answer_kind="number",
                context="\n".join(
                    f"{n} holds {c} stones." for n, c in zip(names, counts, strict=True)
                ),
            ),
            TaskSample(
                id=f"dlg-{i}",
                task_type="dialogue_memory",
                question=f"Repeat the line about {names[target]}.",
                answers=[f"{names[target]} keeps the key {codes[target]}"],
                answer_kind="sequence",
                context="\n".join(
                    f"line: {n} keeps the key {c}" for n, c in zip(names, codes, strict=True)
                ),
                meta={"prefix": ""},
            ),
        ]
    return samples


def _summary(records: list[dict[str, Any]], phases: tuple[str, ...]) -> dict[str, Any]:
    """Tokens/s and mean seconds per phase over the timed steps (`records` skip the warm-up)."""
    tokens = sum(r["tokens"] for r in records)
    seconds = sum(r["time_step"] for r in records)
    split = {p: sum(r[f"time_{p}"] for r in records) / len(records) for p in phases}
    return {
        "tokens_per_s": tokens / seconds,
        "tokens_per_step": tokens / len(records),
        "step_s": seconds / len(records),
        "time_split": {k: round(v, 4) for k, v in split.items()},
    }


def run_ours(model: Path, data: Path, out: Path, args: argparse.Namespace, ray: bool) -> dict:
    """This trainer on the workload; per-step figures from its own RUN/metrics.jsonl."""
    from qwenlong.rl.trainer import train

    hf = {"batch_size": args.prompts, "torch_threads": args.threads}
    config = load_config_dict(
        {
            "model": str(model),
            "data": {"train": [str(data)]},
            "seed": 0,
            "steps": args.steps,
            "sampler": {"batch_size": args.prompts, "tasks": list(TASKS)},
            "rollout": {
                "group_size": args.group,
                "temperature": TEMPERATURE,
                "top_p": TOP_P,
                "max_input_tokens": 8192,  # above every prompt: nothing is truncated
                "max_new_tokens": args.max_new_tokens,
                "hf": hf,
            },
            "advantage": {"estimator": "grpo"},
            "aepo": {"enabled": False},
            "policy": {"torch": {"lr": LR, "torch_threads": args.threads}},
            "checkpoint_every": None,
            "ray": {"enabled": ray, "num_cpus": 2},
        },
        TrainConfig,
        "benchmarks/rl_vs_trl.py",
    )
    with _timed_policy() as calls:
        train(config, out)
    figures = _summary(read_metrics(out)[1:], ("generate", "score", "train", "sync"))
    if not ray:  # in Ray the policy runs in an actor process, out of the patch's reach
        # At most one call of each per step; the warm-up step's (the first) is left out.
        figures["train_split"] = {
            name: round(sum(seconds[1:]) / (args.steps - 1), 4) for name, seconds in calls.items()
        }
        figures["logprob_passes"] = len(calls["logprob_pass"])
    return figures


@contextmanager
def _timed_policy() -> Iterator[dict[str, list[float]]]:
    """Seconds of each `TorchPolicy.forward_logprobs` (the no-grad log-prob and entropy pass
    AEPO and the metrics read, when the rollout's cannot stand in) and `train_step` (forward,
    backward, AdamW) call, at most one each per step here (no SFT, no held-out set, one update
    per batch), to split ours' train phase. The methods are wrapped for the duration only and
    restored on exit."""
    from qwenlong.rl.torch_policy import TorchPolicy

    calls: dict[str, list[float]] = {"logprob_pass": [], "update": []}
    originals = {"logprob_pass": TorchPolicy.forward_logprobs, "update": TorchPolicy.train_step}
    attributes = {"logprob_pass": "forward_logprobs", "update": "train_step"}

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                calls[name].append(time.perf_counter() - start)

        return wrapper

    for name, method in originals.items():
        setattr(TorchPolicy, attributes[name], timed(name, method))
    try:
        yield calls
    finally:
        for name, method in originals.items():
            setattr(TorchPolicy, attributes[name], method)


class _StepClock:
    """Per-step wall time, tokens and phase seconds of the TRL run, filled by the hooks below."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.current: dict[str, Any] = {}
        self._start = 0.0

    def begin(self) -> None:
        self.current = {
            "tokens": 0,
            "padded": 0,
            "time_generate": 0.0,
            "time_generate_and_score": 0.0,
        }
        self._start = time.perf_counter()

    def end(self) -> None:
        total = time.perf_counter() - self._start
        gen, both = self.current["time_generate"], self.current["time_generate_and_score"]
        self.records.append(
            {
                "tokens": self.current["tokens"],
                "padded": self.current["padded"],
                "time_step": total,
                "time_generate": gen,
                "time_score": both - gen,
                "time_train": total - both,
            }
        )


def run_trl(model: Path, samples: list[TaskSample], out: Path, args: argparse.Namespace) -> dict:
    """TRL's GRPOTrainer on the same workload, timed by a callback and two method wrappers."""
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    clock = _StepClock()
    by_id = {s.id: s for s in samples}
    reward = RewardFn(RewardConfig())

    def evals_reward(prompts: list, completions: list, sample_id: list[str], **_: Any) -> list:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return reward([by_id[i] for i in sample_id], texts).rewards.tolist()

    class TimedGRPOTrainer(GRPOTrainer):
        def _generate(self, prompts: list):  # type: ignore[override]
            start = time.perf_counter()
            try:
                return super()._generate(prompts)
            finally:
                clock.current["time_generate"] += time.perf_counter() - start

        def _generate_and_score_completions(self, inputs):  # type: ignore[override]
            start = time.perf_counter()
            output = super()._generate_and_score_completions(inputs)
            clock.current["time_generate_and_score"] += time.perf_counter() - start
            clock.current["tokens"] += int(output["prompt_mask"].sum())
            clock.current["tokens"] += int(output["completion_mask"].sum())
            padded = output["prompt_mask"].numel() + output["completion_mask"].numel()
            clock.current["padded"] += padded
            return output

    class Clock(TrainerCallback):
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            clock.begin()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.end()

    rows = [{"prompt": build_messages(s), "sample_id": s.id} for s in samples]
    completions = args.prompts * args.group
    micro = args.trl_micro_batch or completions  # sequences per forward/backward
    config = GRPOConfig(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        seed=0,
        max_steps=args.steps,
        learning_rate=LR,
        lr_scheduler_type="constant",
        weight_decay=0.01,  # ours' AdamW default
        max_grad_norm=1.0,
        num_generations=args.group,
        per_device_train_batch_size=micro,  # counts completions
        gradient_accumulation_steps=completions // micro,  # one optimizer step per rollout
        generation_batch_size=completions,
        max_completion_length=args.max_new_tokens,
        temperature=TEMPERATURE,
        top_p=TOP_P,
        beta=0.0,
        loss_type="dapo",
        epsilon=0.2,
        epsilon_high=0.28,
        scale_rewards="group",
        router_aux_loss_coef=0.0,  # ours has no load-balancing loss
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = TimedGRPOTrainer(
        model=str(model),
        reward_funcs=evals_reward,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model),
        callbacks=[Clock()],
    )
    trainer.train()
    timed = clock.records[1:]
    padded = sum(r["padded"] for r in timed) / len(timed)
    return {**_summary(timed, ("generate", "score", "train")), "padded_tokens_per_step": padded}


def _prompt_tokens(model: Path, samples: list[TaskSample]) -> tuple[int, int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    lengths = [
        len(
            tokenizer.apply_chat_template(build_messages(s), add_generation_prompt=True)[
                "input_ids"
            ]
        )
        for s in samples
    ]
    return min(lengths), max(lengths)


def _phases(split: dict[str, float]) -> str:
    return "  ".join(f"{name} {seconds:.2f}" for name, seconds in split.items())


def print_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Tokens/s, tokens and seconds per step, and mean seconds per phase of each trainer."""
    print(f"{'trainer':<20}{'tokens/s':>10}{'tok/step':>10}{'s/step':>8}  mean s per phase")
    for name, figures in rows:
        print(
            f"{name:<20}{figures['tokens_per_s']:>10.0f}{figures['tokens_per_step']:>10.0f}"
            f"{figures['step_s']:>8.2f}  {_phases(figures['time_split'])}"
        )


def parse_args() -> argparse.Namespace:
    """The flags, with what a flag leaves unset taken from `--setting`'s preset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="short")
    parser.add_argument(
        "--steps", type=int, default=6, help="optimizer steps; the first is warm-up"
    )
    parser.add_argument("--prompts", type=int, help="prompts per step")
    parser.add_argument("--group", type=int, help="responses per prompt (G)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both trainers")
    parser.add_argument("--ray", action="store_true", help="also run ours with Ray actors")
    args = parser.parse_args()
    for name, value in SETTINGS[args.setting].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    load = round(os.getloadavg()[0], 2)  # other work on the cores skews both trainers

    from qwenlong.core.tiny_model import build_tiny_model

    samples = make_samples(count=16, lines=args.lines)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_model(tmp / "tiny")
        data = write_samples(samples, tmp / "data.parquet")
        prompt_range = _prompt_tokens(model, samples)
        ours = run_ours(model, data, tmp / "ours", args, ray=False)
        trl = run_trl(model, samples, tmp / "trl", args)
        with_ray = run_ours(model, data, tmp / "ours-ray", args, ray=True) if args.ray else None

    rows = [("ours (in-process)", ours), ("TRL GRPOTrainer", trl)]
    rows += [("ours (Ray actors)", with_ray)] if with_ray else []
    print(
        f"{args.setting}: {args.prompts} prompts x G={args.group}, {args.max_new_tokens} new "
        f"tokens, prompts {prompt_range[0]}-{prompt_range[1]} tokens, {args.steps - 1} timed "
        f"steps, {args.threads} thread(s), load {load}"
    )
    print_table(rows)
    print(
        f"ours' train phase: {_phases(ours['train_split'])} "
        f"({ours['logprob_passes']} log-prob passes in {args.steps} steps)"
    )
    print(
        f"TRL tensors per step: {trl['padded_tokens_per_step']:.0f} tokens with padding "
        f"for {trl['tokens_per_step']:.0f} real"
    )
    config = {
        "setting": args.setting,
        "prompts_per_step": args.prompts,
        "group_size": args.group,
        "max_new_tokens": args.max_new_tokens,
        "prompt_tokens_range": list(prompt_range),
        "steps": args.steps,
        "timed_steps": args.steps - 1,
        "threads": args.threads,
        "trl_sequences_per_micro_batch": args.trl_micro_batch or args.prompts * args.group,
        "lr": LR,
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "load_avg_1m_before": load,
    }
    result = {
        "ours_tokens_per_s": round(ours["tokens_per_s"], 1),
        "trl_tokens_per_s": round(trl["tokens_per_s"], 1),
        "ratio": round(ours["tokens_per_s"] / trl["tokens_per_s"], 3),
        "ours_time_split": ours["time_split"],
        "trl_time_split": trl["time_split"],
        "ours_train_split": ours["train_split"],
        "ours_logprob_passes": ours["logprob_passes"],
        "ours_step_s": round(ours["step_s"], 3),
        "trl_step_s": round(trl["step_s"], 3),
        "ours_tokens_per_step": ours["tokens_per_step"],
        "trl_tokens_per_step": trl["tokens_per_step"],
        "trl_padded_tokens_per_step": trl["padded_tokens_per_step"],
        "config": config,
    }
    if with_ray:
        result["ours_ray_tokens_per_s"] = round(with_ray["tokens_per_s"], 1)
        result["ray_ratio"] = round(with_ray["tokens_per_s"] / trl["tokens_per_s"], 3)
        result["ours_ray_time_split"] = with_ray["time_split"]
        result["ours_ray_step_s"] = round(with_ray["step_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
