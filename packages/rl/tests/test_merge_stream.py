"""The streaming merge: bounded memory, tiny-model merges that transformers loads and that equal
the SCE formula, self-merges, copied tensors, and errors raised before anything is written."""

from __future__ import annotations

import json
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from qwenlong.core.errors import ConfigError
from qwenlong.core.safetensors_io import CODES
from qwenlong.core.tiny_model import TinyModelConfig, build_tiny_model
from qwenlong.rl.merge.checkpoint import CheckpointError, TensorInfo
from qwenlong.rl.merge.config import MergeConfig
from qwenlong.rl.merge.sce import sce_merge
from qwenlong.rl.merge.stream import merge_checkpoints, plan_outputs, stream_merge

torch.set_num_threads(1)


class LiveCounter:
    """How many tensors handed out by the fake sources are still alive, and the peak."""

    def __init__(self) -> None:
        self.alive = 0
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> torch.Tensor:
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        weakref.finalize(tensor, self._release)
        return tensor

    def _release(self) -> None:
        self.alive -= 1


class FakeSource:
    """A `TensorSource` over in-memory tensors that hands out fresh, counted copies."""

    def __init__(self, label: str, tensors: dict[str, torch.Tensor], counter: LiveCounter) -> None:
        self.label, self._tensors, self._counter = label, tensors, counter

    def names(self) -> list[str]:
        return list(self._tensors)

    def info(self, name: str) -> TensorInfo:
        tensor = self._tensors[name]
        return TensorInfo(tuple(tensor.shape), CODES[tensor.dtype], Path(self.label))

    def get(self, name: str) -> torch.Tensor:
        return self._counter.track(self._tensors[name].clone())


def test_streaming_holds_two_source_tensors_at_most_whatever_the_model_count() -> None:
    generator = torch.Generator().manual_seed(0)
    shapes = {"emb": (32, 8), "proj": (8, 8), "experts": (4, 8, 8), "norm": (8,)}
    base_tensors = {n: torch.randn(s, generator=generator) for n, s in shapes.items()}
    base_tensors["ids"] = torch.arange(5)
    model_tensors = [
        {n: t + torch.randn(t.shape, generator=generator) if t.is_floating_point() else t.clone()
         for n, t in base_tensors.items()}
        for _ in range(4)
    ]  # fmt: skip
    counter = LiveCounter()
    base = FakeSource("base", base_tensors, counter)
    models = [FakeSource(f"models[{i}]", t, counter) for i, t in enumerate(model_tensors)]
    written: dict[str, torch.Tensor] = {}
    previous: list[weakref.ref[torch.Tensor]] = []

    def write(name: str, tensor: torch.Tensor) -> None:
        assert all(ref() is None for ref in previous), "an earlier output is still referenced"
        previous[:] = [weakref.ref(tensor)]
        written[name] = tensor.clone()

    plan = plan_outputs(base, [], None)
    stats = stream_merge(base, models, plan, write, top_k=0.5)
    assert counter.peak == 2 and counter.alive == 0
    assert (stats.tensors_merged, stats.tensors_copied) == (4, 1)
    assert torch.equal(written["ids"], base_tensors["ids"])
    for name in shapes:
        expected = sce_merge(base_tensors[name], [m[name] for m in model_tensors], 0.5).merged
        assert torch.equal(written[name], expected)


def reference_sce(base: np.ndarray, models: list[np.ndarray]) -> np.ndarray:
    """SCE with top_k = 1 and the sum rule, written from the formula in float64 numpy: weights
    from mean squares, erase against the sign of the sum, divide by the surviving weights."""
    deltas = np.stack([(m - base).astype(np.float64) for m in models]).reshape(len(models), -1)
    mean_squares = (deltas**2).mean(axis=1)
    weights = mean_squares / mean_squares.sum() if mean_squares.sum() else np.full(len(models), 0.5)
    elected = np.sign(deltas.sum(axis=0))
    keep = (np.sign(deltas) == elected) & (elected != 0)
    numerator = (weights[:, None] * keep * deltas).sum(axis=0)
    divisor = (weights[:, None] * keep).sum(axis=0)
    merged = np.where(divisor > 0, numerator / np.where(divisor > 0, divisor, 1), 0.0)
    return base.astype(np.float64) + merged.reshape(base.shape)


def read_all(directory: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            tensors.update({name: handle.get_tensor(name) for name in handle.offset_keys()})
    return tensors


@pytest.fixture(scope="module")
def model_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model, seed 1: same shapes as the base (seed 0), different weights."""
    config = TinyModelConfig(seed=1, corpus_paragraphs=40)
    return build_tiny_model(tmp_path_factory.mktemp("seed1"), config)


@pytest.fixture(scope="module")
def model_b(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A "fine-tune" of the base (its weights plus seeded noise) saved by transformers in shards."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    out = tmp_path_factory.mktemp("noisy")
    model.save_pretrained(out, max_shard_size="600KB")
    assert (out / "model.safetensors.index.json").is_file()
    return out


def merge_config(base: Path, models: list[Path], output: Path, **fields: object) -> MergeConfig:
    return MergeConfig(base=base, models=models, output=output, **fields)


def test_tiny_models_merge_into_a_loadable_model_equal_to_the_formula(
    tmp_path: Path, tiny_model_dir: Path, model_a: Path, model_b: Path
) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    config = merge_config(tiny_model_dir, [model_a, model_b], out, max_shard_size="1MB")
    summary = merge_checkpoints(config)
    assert len(summary.shards) == 5 and (out / "model.safetensors.index.json").is_file()
    merged = read_all(out)
    sources = [read_all(tiny_model_dir), read_all(model_a), read_all(model_b)]
    assert set(merged) == set(sources[0])
    for name, tensor in merged.items():
        base, *models = (source[name].numpy() for source in sources)
        np.testing.assert_allclose(tensor.numpy(), reference_sce(base, models), rtol=0, atol=1e-6)
    for name in ("config.json", "tokenizer.json", "chat_template.jinja", "generation_config.json"):
        assert (out / name).read_bytes() == (tiny_model_dir / name).read_bytes()
    model = AutoModelForCausalLM.from_pretrained(out)
    logits = model(torch.tensor([[5, 6, 7]])).logits
    assert logits.shape == (1, 3, 2048) and torch.isfinite(logits).all()
    written = json.loads((out / "merge_summary.json").read_text())
    assert written["tensors_merged"] == len(merged) and written["shards"] == summary.shards
    assert sum(written["mean_weights"]) == pytest.approx(1.0)


def test_selection_streams_exactly_like_the_in_memory_merge(
    tmp_path: Path, tiny_model_dir: Path, model_a: Path, model_b: Path
) -> None:
    out = tmp_path / "merged"
    summary = merge_checkpoints(
        merge_config(tiny_model_dir, [model_a, model_b], out, top_k=0.3, sign_election="count")
    )
    merged = read_all(out)
    sources = [read_all(tiny_model_dir), read_all(model_a), read_all(model_b)]
    for name, tensor in merged.items():
        expected = sce_merge(sources[0][name], [s[name] for s in sources[1:]], 0.3, "count")
        assert torch.equal(tensor, expected.merged)
    # Matrices hold 0.3 of their entries, rounded up, plus ties (norm weights all tie).
    assert 0.3 < summary.stats.entries_selected / summary.stats.entries < 0.31


def test_merging_a_model_with_itself_returns_it(
    tmp_path: Path, tiny_model_dir: Path, model_a: Path
) -> None:
    twice = merge_checkpoints(merge_config(tiny_model_dir, [model_a, model_a], tmp_path / "aa"))
    expected = read_all(model_a)
    for name, tensor in read_all(Path(twice.output)).items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-7)
    onto_itself = merge_checkpoints(merge_config(model_a, [model_a], tmp_path / "a_on_a"))
    for name, tensor in read_all(Path(onto_itself.output)).items():
        assert torch.equal(tensor, expected[name])


def test_copied_tensors_and_output_dtype(
    tmp_path: Path, tiny_model_dir: Path, model_a: Path, model_b: Path
) -> None:
    out = tmp_path / "bf16"
    config = merge_config(
        tiny_model_dir,
        [model_a, model_b],
        out,
        dtype="bfloat16",
        copy_from_base=["*.mlp.gate.weight"],
    )
    summary = merge_checkpoints(config)
    assert summary.stats.tensors_copied == 2  # one router per layer
    merged, base = read_all(out), read_all(tiny_model_dir)
    assert {t.dtype for t in merged.values()} == {torch.bfloat16}
    assert torch.equal(
        merged["model.layers.1.mlp.gate.weight"], base["model.layers.1.mlp.gate.weight"].bfloat16()
    )
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_mismatched_shapes_fail_before_anything_is_written(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    tensors = read_all(bad)
    tensors["model.layers.0.self_attn.k_proj.weight"] = tensors[
        "model.layers.0.self_attn.k_proj.weight"
    ].T.contiguous()
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "merged"
    with pytest.raises(CheckpointError) as caught:
        merge_checkpoints(merge_config(tiny_model_dir, [bad], out))
    message = str(caught.value)
    assert (
        f"{bad / 'model.safetensors'}: tensor 'model.layers.0.self_attn.k_proj.weight'" in message
    )
    assert "has shape [64, 32], the base" in message
    assert not out.exists() and not (tmp_path / ".merged.partial").exists()


def test_output_must_be_new_or_overwritten_and_never_an_input(
    tmp_path: Path, tiny_model_dir: Path, model_a: Path
) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        merge_checkpoints(merge_config(tiny_model_dir, [model_a], out))
    merge_checkpoints(merge_config(tiny_model_dir, [model_a], out, overwrite=True))
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    with pytest.raises(ConfigError, match="is one of the input checkpoints"):
        merge_checkpoints(merge_config(tiny_model_dir, [model_a], model_a, overwrite=True))
