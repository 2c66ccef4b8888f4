"""The RL loop end to end on the tiny model: metrics and summary written, exact resume, bad input
refused before compute, and the off-policy mini-batch path."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import read_metrics
from qwenlong.core.safetensors_io import read_sharded
from qwenlong.rl.checkpoint import load_checkpoint
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.interfaces import PackedBatch, PolicyUpdate, StepStats
from qwenlong.rl.trainer import train
from qwenlong.rl.updates import update_policy

REQUIRED = (
    "step",
    "reward_mean",
    "accuracy",
    "entropy",
    "aepo_active",
    "kept_samples",
    "response_length",
    "grad_norm",
    "tokens_per_s",
    "time_generate",
    "time_score",
    "time_train",
    "time_sync",
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def make_samples(per_task: int) -> list[TaskSample]:
    """Short samples of four task types. The dialogue ones have an empty MRCR prefix, so even
    a random model's output earns a dense, varying reward and GRPO has a gradient."""
    samples = []
    for i in range(per_task):
        samples += [
            TaskSample(
                id=f"read-{i}",
                task_type="reading",
                question=f"What is the code of item {i}?",
                answers=[f"k{i}"],
                context=f"Item {i} has code k{i}.",
            ),
            TaskSample(
                id=f"mc-{i}",
                task_type="mc",
                question=f"Which option names item {i}?",
                answers=["B"],
                answer_kind="choice",
                choices=["red", "blue", "green", "gold"],
                context=f"Item {i} is blue.",
            ),
            TaskSample(
                id=f"num-{i}",
                task_type="numerical",
                question=f"What is {i} plus one?",
                answers=[str(i + 1)],
                answer_kind="number",
                context=f"{i} plus one is {i + 1}.",
            ),
            TaskSample(
                id=f"dlg-{i}",
                task_type="dialogue_memory",
                question=f"Repeat the line about item {i}.",
                answers=[f"item {i} is here"],
                answer_kind="sequence",
                context=f"line: item {i} is here",
                meta={"prefix": ""},
            ),
        ]
    return samples


def make_config(model: Path, data: Path, **changes: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "model": str(model),
        "data": {"train": [str(data)], "heldout_fraction": 0.25},
        "steps": 2,
        "seed": 3,
        "sampler": {"batch_size": 4, "tasks": ["reading", "mc", "numerical", "dialogue_memory"]},
        "rollout": {"group_size": 2, "max_new_tokens": 6, "max_input_tokens": 400},
        "policy": {"torch": {"lr": 1e-3}},
        "aepo": {"entropy_high": 50.0, "entropy_low": 40.0},
        "heldout": {"size": 6},
        "checkpoint_every": 2,
        "ray": {"enabled": False},
    }
    base.update(changes)
    return load_config_dict(base, TrainConfig, "test")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_samples(make_samples(8), tmp_path / "data.parquet")


def _algorithmic(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without wall-clock figures, which differ between any two runs."""
    timing = ("time_", "tokens_per_s", "train_tokens_per_s")
    return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in records]


def test_tiny_run_writes_metrics_summary_plots_and_checkpoints(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    sft = {"steps": 2, "batch_size": 4, "control": True}
    heldout = {"size": 6, "temperature": 1.0, "samples": 2, "greedy": True}
    config = make_config(tiny_model_dir, dataset, sft=sft, heldout=heldout)
    summary = train(config, out)

    records = read_metrics(out)
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert set(REQUIRED) <= set(record)
        assert record["sequences"] == 4 * 2
        assert {f"reward/{t}" for t in config.sampler.tasks} <= set(record)
        assert 0 <= record["reward_mean"] <= 1
        # the HF engine and the torch policy compute the same float32 log_softmax(logits / T)
        assert record["mismatch/tokens"] > 0 and record["mismatch/logprob_abs_diff"] < 1e-4
    assert records[-1]["heldout_reward"] == summary["heldout_reward_after"]
    assert any(r["reward/dialogue_memory"] > 0 for r in records)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert summary["steps"] == 2 and summary["heldout_size"] == 6
    assert summary["heldout_responses_per_prompt"] == 2
    for key in ("heldout_reward_before", "heldout_reward_after", "heldout_greedy_after"):
        assert 0 <= summary[key] <= 1 and summary[f"{key}_stderr"] is not None
    evaluations = {r["step"]: r for r in read_metrics(out / "heldout.jsonl")}
    before, after = evaluations[0], evaluations[2]
    assert len(before["per_prompt"]) == 6 and before["responses"] == 2
    assert len(after["greedy"]["per_prompt"]) == 6 and after["greedy"]["responses"] == 1
    differences = [b - a for a, b in zip(before["per_prompt"], after["per_prompt"], strict=True)]
    assert summary["heldout_gain"] == pytest.approx(sum(differences) / 6)
    assert summary["heldout_gain"] == pytest.approx(
        summary["heldout_reward_after"] - summary["heldout_reward_before"]
    )
    assert summary["heldout_gain_stderr"] == pytest.approx(statistics.stdev(differences) / 6**0.5)
    assert "heldout_gain_greedy" in summary and "rl_over_control_greedy" in summary
    assert summary["sft"]["steps"] == 2
    control = summary["sft_control"]
    assert control["budget_s"] == pytest.approx(sum(r["time_step"] for r in records))
    assert control["seconds"] >= control["budget_s"] and control["steps"] >= 1
    assert 0 <= control["heldout_reward"] <= 1 and control["heldout_reward_stderr"] is not None
    assert control["heldout_gain"] == pytest.approx(
        control["heldout_reward"] - summary["heldout_reward_before"]
    )
    assert summary["rl_over_control"] == pytest.approx(
        summary["heldout_reward_after"] - control["heldout_reward"]
    )
    assert json.loads((out / "sft_control" / "heldout.json").read_text())["count"] == 6
    assert [r["step"] for r in read_metrics(out / "sft_control")] == [control["steps"]]
    assert (out / "sft" / "model" / "config.json").is_file()
    assert summary["model"] == str(out / "model")
    final = dict(read_sharded(out / "model"))  # HF's on-disk layout, one tensor per expert
    trained = dict(load_checkpoint(out / "checkpoints" / "step_000002", None).weights())
    assert AutoModelForCausalLM.from_pretrained(out / "model") is not None
    assert final.keys() == trained.keys()
    assert all(torch.equal(final[name], trained[name]) for name in final)
    assert len(read_metrics(out / "sft")) == 1  # log_every 10: only the last step
    assert (out / "plots" / "reward.png").stat().st_size > 0
    assert (out / "plots" / "heldout_reward.png").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000002"]
    kept = json.loads((out / "stages" / "main" / "train_ids.json").read_text())
    assert {r["step"] for r in read_metrics(out / "heldout.jsonl")} == {0, 2}
    train_ids, heldout_ids = _split_ids(dataset)
    assert sorted(kept) == sorted(train_ids) and len(heldout_ids) > 6


def _split_ids(data: Path) -> tuple[list[str], list[str]]:
    from qwenlong.core.dataset_io import read_samples
    from qwenlong.rl.heldout import split_heldout

    train, heldout = split_heldout(read_samples(data), 0.25)
    return [s.id for s in train], [s.id for s in heldout]


def test_killed_run_resumes_to_the_same_metrics(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = make_config(tiny_model_dir, dataset, steps=4, heldout={"size": 0})
    train(config, out)
    straight = read_metrics(out)
    weights_after = (out / "checkpoints" / "step_000004" / "model.safetensors").read_bytes()
    assert straight[0]["grad_norm"] > 0  # the test is void if nothing is learned

    # Killed after logging steps 3-4 but before their checkpoint: resume from step 2.
    shutil.rmtree(out / "checkpoints" / "step_000004")
    (out / "summary.json").unlink()
    train(config, out)
    resumed = read_metrics(out)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    assert _algorithmic(resumed) == _algorithmic(straight)
    assert (out / "checkpoints" / "step_000004" / "model.safetensors").read_bytes() == weights_after


def test_resuming_with_another_config_fails_before_compute(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train(make_config(tiny_model_dir, dataset, steps=1, heldout={"size": 0}), out)
    changed = make_config(
        tiny_model_dir, dataset, steps=1, heldout={"size": 0}, policy={"torch": {"lr": 5e-4}}
    )
    with pytest.raises(ConfigError, match=r"policy\.torch\.lr: 0\.001 -> 0\.0005"):
        train(changed, out)


def test_missing_task_type_fails_before_any_model_is_loaded(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_samples(
        [s for s in make_samples(4) if s.task_type != "mc"], tmp_path / "data.parquet"
    )
    out = tmp_path / "run"
    with pytest.raises(DatasetError, match=r"stage main data: no samples of task type\(s\) mc"):
        train(make_config(tiny_model_dir, data, sft={"steps": 1, "batch_size": 4}), out)
    assert not (out / "sft").exists() and not (out / "checkpoints").exists()


class _RecordingPolicy:
    """Records the train_step calls of `update_policy`."""

    def __init__(self) -> None:
        self.calls: list[tuple[PackedBatch, PolicyUpdate]] = []

    def train_step(self, batch: PackedBatch, update: PolicyUpdate) -> StepStats:
        self.calls.append((batch, update))
        return StepStats(
            loss=float(len(self.calls)),
            grad_norm=2.0,
            tokens=batch.num_tokens,
            loss_tokens=update.global_tokens,
            extra={"clip_frac_low": 0.5},
        )


def test_several_updates_split_the_batch_and_normalise_each_mini_batch(
    tiny_model_dir: Path, dataset: Path
) -> None:
    packed = PackedBatch.from_sequences([[1, 2]] * 4, [[3], [4, 5], [6, 7, 8], [9, 10, 11, 12]])
    n = packed.num_tokens
    update = PolicyUpdate(
        advantages=torch.ones(n),
        token_mask=packed.loss_mask.clone(),
        old_logprobs=torch.arange(n, dtype=torch.float32),
        ref_logprobs=None,
        global_tokens=int(packed.loss_mask.sum()),
    )
    policy = _RecordingPolicy()
    config = make_config(tiny_model_dir, dataset, updates_per_batch=2)
    stats = update_policy(policy, packed, update, config, step=1)

    assert len(policy.calls) == 2
    responses = sorted(int(b.loss_mask.sum()) for b, _ in policy.calls)
    totals = [u.global_tokens for _, u in policy.calls]
    assert sum(totals) == 10 and sorted(totals) == responses
    seen = sorted(int(t) for b, _ in policy.calls for t in b.input_ids[b.loss_mask])
    assert seen == list(range(3, 13))
    for batch, part in policy.calls:
        # old log-probs were cut with the same positions as the tokens
        assert part.old_logprobs is not None and len(part.old_logprobs) == batch.num_tokens
    assert stats is not None and stats.loss == 1.5 and stats.loss_tokens == 10
    assert stats.extra == {"clip_frac_low": 0.5}

    on_policy = _RecordingPolicy()
    update_policy(on_policy, packed, update, make_config(tiny_model_dir, dataset), step=1)
    assert len(on_policy.calls) == 1 and on_policy.calls[0][1] is update


def test_nothing_to_train_skips_the_update(tiny_model_dir: Path, dataset: Path) -> None:
    packed = PackedBatch.from_sequences([[1, 2]], [[3, 4]])
    update = PolicyUpdate(torch.zeros(4), torch.zeros(4, dtype=torch.bool), None, None, 0)
    policy = _RecordingPolicy()
    assert update_policy(policy, packed, update, make_config(tiny_model_dir, dataset), 1) is None
    assert policy.calls == []


@pytest.fixture
def local_ray() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow  # three actor processes each import torch and transformers: about a minute
def test_ray_actors_run_the_same_loop_as_the_driver(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path, local_ray: Any
) -> None:
    changes = {"steps": 1, "heldout": {"size": 2}, "checkpoint_every": 1}
    on_ray = make_config(tiny_model_dir, dataset, ray={"enabled": True}, **changes)
    train(on_ray, tmp_path / "ray")
    assert local_ray.is_initialized()  # a Ray the caller started is left running
    # The SFT control needs a policy actor of its own: on 2 CPUs it can start only once
    # RL's policy and rollout actors, which reserve both, are gone.
    sft = {"steps": 1, "batch_size": 4, "control": True}
    controlled = make_config(tiny_model_dir, dataset, ray={"enabled": True}, sft=sft, **changes)
    summary = train(controlled, tmp_path / "control")
    assert summary["sft_control"]["heldout_reward"] is not None
    in_driver = make_config(tiny_model_dir, dataset, **changes)
    train(in_driver, tmp_path / "local")
    assert _algorithmic(read_metrics(tmp_path / "ray")) == _algorithmic(
        read_metrics(tmp_path / "local")
    )


def test_stages_filter_retrospectively_and_resume_at_the_boundary(
    tiny_model_dir: Path, dataset: Path, tmp_path: Path
) -> None:
    stages = [
        {"name": "short", "steps": 1, "max_input_tokens": 400, "max_output_tokens": 4},
        {
            "name": "long",
            "steps": 1,
            "max_input_tokens": 500,
            "max_output_tokens": 6,
            "data": {"retrospective": {"measure": "previous_rollouts"}},
            "from_checkpoint": str(tiny_model_dir),
        },
        {  # the paper's step: a pass@2 pre-inference of the current policy at these lengths
            "name": "longer",
            "steps": 1,
            "max_input_tokens": 500,
            "max_output_tokens": 8,
            # A random tiny model never solves anything: keep the never-solved here.
            "data": {
                "retrospective": {"pass_k": 2, "prompts_per_call": 3, "never_solved_at_most": None}
            },
        },
    ]
    config = make_config(
        tiny_model_dir,
        dataset,
        steps=None,
        stages=stages,
        heldout={"size": 0},
        checkpoint_every=None,
    )
    out = tmp_path / "run"
    train(config, out)
    records = read_metrics(out)
    assert [(r["step"], r["stage"]) for r in records] == [(1, "short"), (2, "long"), (3, "longer")]
    assert records[0]["response_length_max"] <= 4 and records[1]["response_length_max"] <= 6
    rates = read_metrics(out / "stages" / "short" / "pass_rates.jsonl")
    assert len(rates) == 4 and all(r["attempts"] == 2 for r in rates)
    report = json.loads((out / "stages" / "long" / "filter_report.json").read_text())
    unsolved = sum(r["pass_rate"] == 0.0 for r in rates)
    assert unsolved > 0 and report["retro_never_solved"] == unsolved
    assert report["kept"] == report["input"] - unsolved - report.get("retro_always_solved", 0)
    measured = read_metrics(out / "stages" / "longer" / "pre_inference.jsonl")
    assert len(measured) == report["input"] and all(r["attempts"] == 2 for r in measured)
    longer = json.loads((out / "stages" / "longer" / "filter_report.json").read_text())
    always = sum(r["passed"] == 2 for r in measured)
    assert longer["kept"] == longer["input"] - always
    assert longer["replayed"] > 0  # earlier stages' unsolved questions drawn more often
    pool = json.loads((out / "stages" / "longer" / "train_ids.json").read_text())
    assert len(pool) == longer["kept"] + longer.get("replayed", 0)

    # Killed right after the first stage's checkpoint, before its pass rates were written.
    shutil.rmtree(out / "checkpoints" / "step_000003")
    shutil.rmtree(out / "checkpoints" / "step_000002")
    shutil.rmtree(out / "stages" / "long")
    # ... and, in a second life, in the middle of the next pre-inference (a torn last line).
    pre = out / "stages" / "longer" / "pre_inference.jsonl"
    (out / "stages" / "longer" / "train_ids.json").unlink()
    pre.write_text(pre.read_text()[: len(pre.read_text()) // 2])
    (out / "stages" / "short" / "pass_rates.jsonl").unlink()
    train(config, out)
    assert _algorithmic(read_metrics(out)) == _algorithmic(records)
    assert read_metrics(out / "stages" / "short" / "pass_rates.jsonl") == rates
    assert read_metrics(pre) == measured
    assert json.loads((out / "stages" / "longer" / "train_ids.json").read_text()) == pool
