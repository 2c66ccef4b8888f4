"""TrainConfig: the paper's defaults, errors that point at the key, one source of truth for the
temperature and the loss, stages, and the resume fingerprint."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel

from qwenlong.core.config_loader import load_config
from qwenlong.core.errors import ConfigError
from qwenlong.rl import config as config_module
from qwenlong.rl import stages as stages_module
from qwenlong.rl import weight_sync as weight_sync_module
from qwenlong.rl.checkpoint import config_fingerprint
from qwenlong.rl.config import TrainConfig
from qwenlong.rl.megatron import config as megatron_config_module

MINIMAL = "model: runs/tiny-model\ndata: {train: [data/train.parquet]}\nsteps: 10\n"


def load(tmp_path: Path, text: str, *overrides: str) -> TrainConfig:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return load_config(path, TrainConfig, overrides)


def test_defaults_are_the_papers(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config.rollout.group_size == 8
    assert config.sampler.batch_size == 128
    assert config.policy.torch.lr == 2e-6
    assert (config.rollout.temperature, config.rollout.top_p) == (0.7, 0.95)
    assert config.loss.kl_beta == 0.0
    assert config.updates_per_batch == 1
    assert config.advantage.estimator == "grpo_task_std"
    assert config.aepo.enabled and config.sft is None and config.stages == ()


def test_unknown_key_is_named_with_its_line_and_a_hint(tmp_path: Path) -> None:
    text = MINIMAL + "rollout:\n  group_sise: 4\n"
    with pytest.raises(
        ConfigError,
        match=r"train\.yaml:5: rollout\.group_sise is not a field "
        r"\(did you mean group_size\?\)",
    ):
        load(tmp_path, text)


def test_steps_and_stages_are_exclusive_and_one_is_required(tmp_path: Path) -> None:
    stage = "stages: [{name: s1, steps: 2, max_input_tokens: 100, max_output_tokens: 10}]\n"
    with pytest.raises(ConfigError, match=r"either steps .* or stages"):
        load(tmp_path, MINIMAL + stage)
    with pytest.raises(ConfigError, match="steps is required"):
        load(tmp_path, MINIMAL.replace("steps: 10\n", ""))


def test_single_stage_comes_from_steps_and_rollout_limits(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL, "rollout.max_input_tokens=300", "rollout.max_new_tokens=20")
    [stage] = config.stage_list()
    assert (stage.name, stage.steps) == ("main", 10)
    assert (stage.max_input_tokens, stage.max_output_tokens) == (300, 20)


def test_stage_names_must_be_unique(tmp_path: Path) -> None:
    one = "{name: s, steps: 1, max_input_tokens: 100, max_output_tokens: 10}"
    text = MINIMAL.replace("steps: 10\n", "") + f"stages: [{one}, {one}]\n"
    with pytest.raises(ConfigError, match="stage names s appear more than once"):
        load(tmp_path, text)


def test_first_stage_cannot_filter_retrospectively_without_pass_rates(tmp_path: Path) -> None:
    stage = (
        "stages: [{name: s1, steps: 1, max_input_tokens: 100, max_output_tokens: 10, "
        "data: {retrospective: {measure: previous_rollouts}}}]\n"
    )
    with pytest.raises(ConfigError, match=r"stage 's1' reads data\.retrospective's pass rates"):
        load(tmp_path, MINIMAL.replace("steps: 10\n", "") + stage)
    # A pre-inference (the default) measures the starting policy itself.
    measured = stage.replace("{measure: previous_rollouts}", "{}")
    load(tmp_path, MINIMAL.replace("steps: 10\n", "") + measured)


def test_temperature_and_loss_have_one_source(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"policy\.torch\.temperature is set from rollout\.temperature"
    ):
        load(tmp_path, MINIMAL, "policy.torch.temperature=1.0")
    config = load(tmp_path, MINIMAL, "rollout.temperature=0.9", "loss.clip_high=0.3")
    policy = config.policy_config(lr=1e-3)
    assert (policy.temperature, policy.loss.clip_high, policy.lr) == (0.9, 0.3, 1e-3)
    assert config.policy_config().lr == 2e-6


def test_heldout_evaluation_needs_heldout_prompts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"heldout\.size > 0 needs held-out prompts"):
        load(tmp_path, MINIMAL, "heldout.size=400")
    assert load(tmp_path, MINIMAL, "heldout.size=400", "data.heldout_fraction=0.2").heldout.size


def test_judge_is_required_when_the_reward_uses_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reward\.use_judge is true but judge"):
        load(tmp_path, MINIMAL, "reward.use_judge=true")


def test_fingerprint_ignores_run_length_and_reporting_but_not_the_algorithm(
    tmp_path: Path,
) -> None:
    base = config_fingerprint(load(tmp_path, MINIMAL))
    for harmless in ("steps=20", "heldout.every=5", "checkpoint_every=3", "keep_checkpoints=5"):
        assert config_fingerprint(load(tmp_path, MINIMAL, harmless)) == base, harmless
    for changed in ("policy.torch.lr=1e-5", "rollout.group_size=4", "seed=1", "aepo.enabled=false"):
        assert config_fingerprint(load(tmp_path, MINIMAL, changed)) != base, changed


def _config_classes() -> list[type[BaseModel]]:
    found = []
    for module in (config_module, stages_module, weight_sync_module, megatron_config_module):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_field_is_documented() -> None:
    classes = _config_classes()
    assert {c.__name__ for c in classes} >= {
        "TrainConfig",
        "SFTConfig",
        "StageConfig",
        "HeldoutConfig",
        "WeightSyncConfig",
        "MegatronPolicyConfig",
        "ParallelConfig",
    }
    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in classes
        for name, field in cls.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undocumented == []


def test_several_workers_need_ray(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.num_workers is 2 but ray\.enabled is false"):
        load(tmp_path, MINIMAL, "ray.enabled=false", "policy.num_workers=2")
    assert load(tmp_path, MINIMAL, "policy.num_workers=2").policy.num_workers == 2


def test_rollout_kind_and_backends_are_checked_against_their_registries(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown rollout kind 'memagnet' \(did you mean 'memagent'\?\)"
    ):
        load(tmp_path, MINIMAL, "rollout.kind=memagnet")
    with pytest.raises(
        ConfigError, match=r"unknown policy backend 'torc' \(did you mean 'torch'\?\)"
    ):
        load(tmp_path, MINIMAL, "policy.backend=torc")
    with pytest.raises(
        ConfigError, match=r"unknown rollout backend 'vlm' \(did you mean 'vllm'\?\)"
    ):
        load(tmp_path, MINIMAL, "rollout.backend=vlm")
    vllm = load(tmp_path, MINIMAL, "rollout.backend=vllm", "policy.num_gpus_per_worker=0.65")
    assert vllm.rollout.backend == "vllm"


def test_colocated_engines_need_one_worker_beside_each_policy_rank(tmp_path: Path) -> None:
    """Colocation puts engine worker i on policy rank i's GPU: the counts must match and the
    GPU shares must fit one GPU (qwenlong.rl.rollout.colocation)."""
    tp4 = ("rollout.backend=vllm", "rollout.vllm.tensor_parallel_size=4")
    fits = load(tmp_path, MINIMAL, *tp4, "rollout.num_workers=2", "policy.num_workers=8",
                "policy.num_gpus_per_worker=0.65")  # fmt: skip
    assert fits.rollout.vllm.tensor_parallel_size == 4
    with pytest.raises(ConfigError, match=r"2 x 4 = 8\) must equal policy.num_workers \(4\)"):
        load(tmp_path, MINIMAL, *tp4, "rollout.num_workers=2", "policy.num_workers=4",
             "policy.num_gpus_per_worker=0.65")  # fmt: skip
    with pytest.raises(ConfigError, match=r"2 policy copies .* = 1.65"):
        load(tmp_path, MINIMAL, *tp4, "rollout.num_workers=1", "policy.num_workers=4",
             "policy.num_gpus_per_worker=0.65", "loss.kl_beta=0.01")  # fmt: skip
    # Without Ray, or on GPUs of their own, nothing is placed.
    load(tmp_path, MINIMAL, *tp4, "rollout.vllm.placement=separate")
