"""Checkpoints: round trips, sharding, RNG restore, fingerprint checks, atomicity, retention."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.rl.checkpoint import (
    config_fingerprint,
    flat_config,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)

torch.set_num_threads(1)

CONFIG = {
    "train": {"lr": 2e-6, "steps": 100, "ray": {"address": None}, "group_size": 8},
    "stages": [{"max_input_tokens": 20_000}, {"max_input_tokens": 60_000}],
    "logging": {"tensorboard": False},
}
FP = config_fingerprint(CONFIG)


def save(run: Path, step: int, **kwargs: object) -> Path:
    """A small checkpoint with default states; keyword arguments override."""
    args: dict[str, object] = {
        "weights": [("w", torch.ones(2))],
        "write_optimizer": None,
        "sampler_state": {"batches_drawn": step},
        "aepo_state": {"active": False},
        "extra": {},
        "config_fingerprint": FP,
        **kwargs,
    }
    return save_checkpoint(run, step, **args)  # type: ignore[arg-type]


def test_round_trip_of_weights_optimizer_and_states(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    shared = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    weights = {
        "embed.weight": shared,
        "lm_head.weight": shared,  # tied: the same storage under two names
        "half": torch.tensor([1.5, -2.25], dtype=torch.bfloat16),
        "ids": torch.tensor([3, 1, 4], dtype=torch.int64),
    }
    path = save(
        tmp_path,
        12,
        weights=iter(weights.items()),
        write_optimizer=lambda folder: (
            folder.mkdir(),
            torch.save(optimizer.state_dict(), folder / "rank_00000.pt"),
        ),
        sampler_state={"batches_drawn": 12, "streams": {"mc": {"epoch": 2, "cursor": 5}}},
        aepo_state={"active": True, "switches": 3},
        extra={"pass_rates": {"counts": {"a": [1, 8]}}},
        config=CONFIG,
    )
    assert path == tmp_path / "checkpoints" / "step_000012"
    loaded = load_checkpoint(path, FP, expected_config=CONFIG)
    assert loaded.step == 12
    got = dict(loaded.weights())
    assert got.keys() == weights.keys()
    for name, tensor in weights.items():
        assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor)
    assert loaded.sampler_state == {
        "batches_drawn": 12,
        "streams": {"mc": {"epoch": 2, "cursor": 5}},
    }
    assert loaded.aepo_state == {"active": True, "switches": 3}
    assert loaded.extra == {"pass_rates": {"counts": {"a": [1, 8]}}}
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    assert loaded.optimizer_folder == (path / "optimizer").resolve()
    fresh.load_state_dict(torch.load(loaded.optimizer_folder / "rank_00000.pt"))
    before, after = optimizer.state_dict()["state"][0], fresh.state_dict()["state"][0]
    assert torch.equal(before["exp_avg"], after["exp_avg"])
    assert torch.equal(before["exp_avg_sq"], after["exp_avg_sq"])
    assert float(after["step"]) == 1.0


def test_large_weights_are_sharded_in_the_hf_layout(tmp_path: Path) -> None:
    # Five 16-byte tensors, at most 40 bytes per shard: 2 + 2 + 1.
    weights = [(f"t{i}", torch.full((4,), float(i))) for i in range(5)]
    path = save(tmp_path, 1, weights=iter(weights), max_shard_bytes=40)
    files = sorted(p.name for p in path.glob("*.safetensors"))
    assert files == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert index["weight_map"]["t4"] == "model-00003-of-00003.safetensors"
    loaded = dict(load_checkpoint(path, FP).weights())
    assert [float(loaded[f"t{i}"][0]) for i in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_rng_restore_gives_the_same_next_numbers(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = save(tmp_path, 5)
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    load_checkpoint(path, FP).restore_rng()
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()) == expected


def test_config_mismatch_names_the_fields_before_loading(tmp_path: Path) -> None:
    path = save(tmp_path, 3, config=CONFIG)
    changed = {**CONFIG, "train": {**CONFIG["train"], "lr": 1e-5, "group_size": 4}}
    with pytest.raises(ConfigError) as err:
        load_checkpoint(path, config_fingerprint(changed), expected_config=changed)
    message = str(err.value)
    assert "train.group_size: 8 -> 4, train.lr: 2e-06 -> 1e-05" in message
    assert "\n" not in message
    staged = {**CONFIG, "stages": [{"max_input_tokens": 20_000}, {"max_input_tokens": 1}]}
    with pytest.raises(ConfigError, match=r"stages\.1\.max_input_tokens: 60000 -> 1"):
        load_checkpoint(path, config_fingerprint(staged), expected_config=staged)
    with pytest.raises(ConfigError, match="fingerprint"):
        load_checkpoint(path, config_fingerprint(changed))
    assert load_checkpoint(path, None).step == 3  # a stage starting from another's weights


def test_resume_mutable_fields_keep_the_fingerprint() -> None:
    resumed = {
        **CONFIG,
        "train": {**CONFIG["train"], "steps": 500, "ray": {"address": "10.0.0.1:6379"}},
        "logging": {"tensorboard": True},
    }
    assert config_fingerprint(resumed) == FP
    flat = flat_config(CONFIG)
    assert flat == {
        "train.lr": 2e-6,
        "train.group_size": 8,
        "stages.0.max_input_tokens": 20_000,
        "stages.1.max_input_tokens": 60_000,
    }


def test_a_config_model_fingerprints_like_its_dump() -> None:
    class Small(ConfigModel):
        lr: float = 2e-6
        """Learning rate."""
        tasks: tuple[str, ...] = ("mc", "reading")
        """Tasks."""

    assert config_fingerprint(Small()) == config_fingerprint(
        {"lr": 2e-6, "tasks": ["mc", "reading"]}
    )
    assert config_fingerprint(Small(lr=1e-5)) != config_fingerprint(Small())


def test_torn_and_temp_checkpoints_are_ignored_and_cleaned(tmp_path: Path) -> None:
    save(tmp_path, 10)
    root = tmp_path / "checkpoints"
    (root / ".tmp-step_000020-deadbeef").mkdir()
    (root / ".tmp-step_000020-deadbeef" / "model.safetensors").write_bytes(b"partial")
    (root / "step_000030").mkdir()  # no state.json: never completed
    (root / "step_000040").mkdir()
    (root / "step_000040" / "state.json").write_text('{"step": 4')  # torn
    assert latest_checkpoint(tmp_path) == root / "step_000010"
    with pytest.raises(DatasetError, match="not a complete checkpoint"):
        load_checkpoint(root / "step_000030", FP)
    save(tmp_path, 11)
    assert not (root / ".tmp-step_000020-deadbeef").exists()
    assert latest_checkpoint(tmp_path) == root / "step_000011"
    assert latest_checkpoint(tmp_path / "fresh") is None


def test_failure_mid_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    save(tmp_path, 1)

    def exploding() -> Iterator[tuple[str, torch.Tensor]]:
        yield "a", torch.zeros(2)
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        save(tmp_path, 2, weights=exploding())
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step_000001"]


def test_keep_last_k_and_same_step_replaced(tmp_path: Path) -> None:
    for step in range(1, 6):
        save(tmp_path, step, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000004", "step_000005"]
    save(tmp_path, 5, weights=[("w", torch.full((2,), 7.0))], keep_last=2)
    weights = dict(load_checkpoint(latest_checkpoint(tmp_path), FP).weights())  # type: ignore[arg-type]
    assert weights["w"].tolist() == [7.0, 7.0]
    assert len(list_checkpoints(tmp_path)) == 2
    with pytest.raises(ConfigError, match="keep_last is 0"):
        save(tmp_path, 6, keep_last=0)


def test_state_that_is_not_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        save(tmp_path, 1, extra={"tensor": torch.zeros(1)})
    assert list_checkpoints(tmp_path) == []
