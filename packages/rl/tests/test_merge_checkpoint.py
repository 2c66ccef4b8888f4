"""Reading checkpoints (single file, several files, sharded index) and checking them against
the base. (The sharded writer the merge uses is tested with `qwenlong.core.safetensors_io`.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from qwenlong.core.safetensors_io import INDEX_FILE, write_sharded
from qwenlong.rl.merge.checkpoint import CheckpointError, SafetensorsCheckpoint, check_compatible

TENSORS = {
    "a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
    "b.weight": torch.linspace(-1, 1, 10).to(torch.bfloat16),
    "c.ids": torch.tensor([7, -3, 5], dtype=torch.int64),
    "d.mask": torch.tensor([True, False, True]),
    "e.scalar": torch.tensor(2.5, dtype=torch.float16),
    "f.empty": torch.zeros(0, 4),
}


def test_reader_follows_the_index_in_storage_order(tmp_path: Path) -> None:
    write_sharded(tmp_path, TENSORS.items(), max_shard_bytes=48)
    with SafetensorsCheckpoint(tmp_path, "base") as checkpoint:
        assert checkpoint.names() == list(TENSORS)
        info = checkpoint.info("b.weight")
        assert (info.shape, info.dtype, info.file.name) == (
            (10,),
            "BF16",
            "model-00002-of-00003.safetensors",
        )
        assert torch.equal(checkpoint.get("c.ids"), TENSORS["c.ids"])


def test_reader_without_index_gathers_every_file(tmp_path: Path) -> None:
    save_file({"x": torch.ones(2)}, tmp_path / "one.safetensors")
    save_file({"y": torch.zeros(3)}, tmp_path / "two.safetensors")
    with SafetensorsCheckpoint(tmp_path, "models[0]") as checkpoint:
        assert checkpoint.names() == ["x", "y"]
    save_file({"x": torch.ones(2)}, tmp_path / "three.safetensors")
    with pytest.raises(
        CheckpointError, match=r"three\.safetensors: tensor 'x' is also in one\.safetensors"
    ):
        SafetensorsCheckpoint(tmp_path, "models[0]")


def test_reader_errors_name_the_directory_or_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"^checkpoint error: base .*/nope: no such model"):
        SafetensorsCheckpoint(tmp_path / "nope", "base")
    with pytest.raises(CheckpointError, match=r"models\[1\] .*: no \.safetensors files"):
        SafetensorsCheckpoint(tmp_path, "models[1]")
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors"):
        SafetensorsCheckpoint(tmp_path, "base")


def test_reader_checks_the_index_against_the_shards(tmp_path: Path) -> None:
    write_sharded(tmp_path, TENSORS.items(), max_shard_bytes=48)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    index["weight_map"]["g.ghost"] = "model-00001-of-00003.safetensors"
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"tensor 'g\.ghost' is not in shard model-00001"):
        SafetensorsCheckpoint(tmp_path, "base")
    del index["weight_map"]["g.ghost"]
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"shard model-00002-of-00003\.safetensors .* missing"
    ):
        SafetensorsCheckpoint(tmp_path, "base")


def one_file(
    directory: Path, tensors: dict[str, torch.Tensor], label: str
) -> SafetensorsCheckpoint:
    directory.mkdir()
    save_file(tensors, directory / "model.safetensors")
    return SafetensorsCheckpoint(directory, label)


def test_compatible_checkpoints_pass_even_with_other_float_dtypes(tmp_path: Path) -> None:
    base = one_file(tmp_path / "b", {"w": torch.ones(2, 3), "n": torch.ones(3)}, "base")
    model = one_file(
        tmp_path / "m", {"w": torch.ones(2, 3, dtype=torch.bfloat16), "n": torch.ones(3)}, "m"
    )
    check_compatible(base, [model])


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"w": torch.ones(3, 2), "n": torch.ones(3)}, r"m/model.safetensors: tensor 'w' has shape \[3, 2\], the base \(.*b/model.safetensors\) has \[2, 3\]"),
        ({"w": torch.ones(2, 3)}, r"models\[0\]: tensor 'n' \(in the base's .*b/model.safetensors\) is missing"),
        ({"w": torch.ones(2, 3), "n": torch.ones(3), "x": torch.ones(1)}, r"m/model.safetensors: tensor 'x' is not in the base"),
        ({"w": torch.ones(2, 3), "n": torch.ones(3, dtype=torch.int32)}, r"tensor 'n' is I32, the base .* has F32"),
        ({"w": torch.ones(2, 3).to(torch.float8_e4m3fn), "n": torch.ones(3)}, r"tensor 'w' is F8_E4M3; dequantize"),
    ],
)  # fmt: skip
def test_incompatible_checkpoints_fail_naming_tensor_and_file(
    tmp_path: Path, tensors: dict[str, torch.Tensor], message: str
) -> None:
    base = one_file(tmp_path / "b", {"w": torch.ones(2, 3), "n": torch.ones(3)}, "base")
    model = one_file(tmp_path / "m", tensors, "models[0]")
    with pytest.raises(CheckpointError, match=message) as caught:
        check_compatible(base, [model])
    assert "\n" not in str(caught.value)
