"""A live transformers model's weights under HF's on-disk names: export equals what
`save_pretrained` writes (names, shapes, dtypes, values), and loading is exact and strict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from qwenlong.core.errors import BackendError
from qwenlong.core.hf_weights import (
    HFWeightReceiver,
    export_hf_weights,
    hf_weight_names,
    load_hf_weights,
)


def _on_disk(model_dir: Path) -> dict[str, torch.Tensor]:
    with safe_open(model_dir / "model.safetensors", framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118


def test_export_is_the_on_disk_checkpoint(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    disk = _on_disk(tiny_model_dir)
    exported = dict(export_hf_weights(model))
    assert any(".experts.0.gate_proj.weight" in name for name in exported)  # one per expert
    assert exported.keys() == disk.keys()
    for name, tensor in disk.items():
        assert exported[name].dtype == tensor.dtype and torch.equal(exported[name], tensor), name
    assert hf_weight_names(model) == {name: tuple(t.shape) for name, t in disk.items()}


def test_loading_the_export_of_another_model_copies_it_exactly(tiny_model_dir: Path) -> None:
    source = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(torch.randn_like(parameter))
    target = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    count = load_hf_weights(target, reversed(list(export_hf_weights(source))), "test model")
    assert count == len(_on_disk(tiny_model_dir))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    ids = torch.tensor([[1, 5, 9, 3]])
    assert torch.equal(source(ids).logits, target(ids).logits)


def test_receiving_is_strict(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    weights = list(export_hf_weights(model))
    expert = next(name for name, _ in weights if ".experts.3.up_proj" in name)
    with pytest.raises(BackendError, match=r"m: load_weights got unknown tensor 'extra'"):
        HFWeightReceiver(model, "m").receive("extra", torch.zeros(1))
    with pytest.raises(BackendError, match=rf"'{expert}' has shape \(2,\)"):
        HFWeightReceiver(model, "m").receive(expert, torch.zeros(2))
    receiver = HFWeightReceiver(model, "m")
    receiver.receive(*weights[0])
    with pytest.raises(BackendError, match="twice"):
        receiver.receive(*weights[0])
    with pytest.raises(BackendError, match=rf"never received '{expert}'"):
        load_hf_weights(model, [w for w in weights if w[0] != expert], "m")
