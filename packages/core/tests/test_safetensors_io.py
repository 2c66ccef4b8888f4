"""Sharded safetensors: round trips bit for bit in write order, HF's file names and index, a
tensor over the bound, repeated names, tied tensors, one tensor in memory while streaming, both
writers agreeing byte for byte, and folders transformers and safetensors load as they are."""

from __future__ import annotations

import errno
import json
import os
import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from qwenlong.core.errors import CheckpointError
from qwenlong.core.safetensors_io import (
    INDEX_FILE,
    SINGLE_FILE,
    ShardedWriter,
    TensorSpec,
    encode_header,
    plan_shards,
    read_sharded,
    weight_files,
    write_sharded,
)

TENSORS = {
    "a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),  # 48 bytes
    "b.weight": torch.linspace(-1, 1, 10).to(torch.bfloat16),  # 20
    "c.ids": torch.tensor([7, -3, 5], dtype=torch.int64),  # 24
    "d.mask": torch.tensor([True, False, True]),  # 3
    "e.scalar": torch.tensor(2.5, dtype=torch.float16),  # 2
    "f.empty": torch.zeros(0, 4),  # 0
}
SHARDED = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
"""The files of TENSORS under a 48-byte bound: [a], [b, c, d] (47 bytes), [e, f]."""


def assert_same(got: list[tuple[str, torch.Tensor]], expected: dict[str, torch.Tensor]) -> None:
    """Same names in the same order, same dtypes and shapes, same bits."""
    assert [name for name, _ in got] == list(expected)
    for name, tensor in got:
        assert tensor.dtype == expected[name].dtype and tensor.shape == expected[name].shape
        assert torch.equal(tensor, expected[name]), name


def test_everything_within_the_bound_is_one_model_safetensors(tmp_path: Path) -> None:
    files = write_sharded(tmp_path, TENSORS.items(), max_shard_bytes=10**6)
    assert files == [tmp_path / SINGLE_FILE] == weight_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SINGLE_FILE]  # no index, no temp files
    assert_same(list(read_sharded(tmp_path)), TENSORS)
    loaded = load_file(tmp_path / SINGLE_FILE)
    assert loaded.keys() == TENSORS.keys()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in TENSORS.items())
    with safe_open(tmp_path / SINGLE_FILE, framework="pt") as handle:
        assert handle.metadata() == {"format": "pt"}


def test_shards_fill_greedily_in_order_with_hf_names_and_index(tmp_path: Path) -> None:
    files = write_sharded(tmp_path, TENSORS.items(), max_shard_bytes=48)
    assert files == [tmp_path / name for name in SHARDED] == weight_files(tmp_path)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert index == {
        "metadata": {"total_size": 48 + 20 + 24 + 3 + 2 + 0},
        "weight_map": {
            "a.weight": SHARDED[0],
            "b.weight": SHARDED[1],
            "c.ids": SHARDED[1],
            "d.mask": SHARDED[1],
            "e.scalar": SHARDED[2],
            "f.empty": SHARDED[2],
        },
    }
    # As transformers writes it: keys sorted, two-space indent, final newline.
    assert (tmp_path / INDEX_FILE).read_text() == json.dumps(index, indent=2, sort_keys=True) + "\n"
    assert not (tmp_path / SINGLE_FILE).exists()
    assert_same(list(read_sharded(tmp_path)), TENSORS)
    for name, file in index["weight_map"].items():
        assert torch.equal(load_file(tmp_path / file)[name], TENSORS[name])
        with safe_open(tmp_path / file, framework="pt") as handle:
            assert handle.metadata() == {"format": "pt"}


def test_a_tensor_over_the_bound_gets_a_shard_of_its_own(tmp_path: Path) -> None:
    tensors = {
        "small.0": torch.ones(2),  # 8 bytes each
        "big": torch.arange(10, dtype=torch.float32),  # 40 bytes, the bound is 16
        "small.1": torch.full((2,), 3.0),
        "small.2": torch.full((2,), 4.0),
    }
    files = write_sharded(tmp_path, tensors.items(), max_shard_bytes=16)
    assert [path.name for path in files] == [
        f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)
    ]
    assert [sorted(load_file(path)) for path in files] == [
        ["small.0"],
        ["big"],
        ["small.1", "small.2"],
    ]
    assert_same(list(read_sharded(tmp_path)), tensors)


def test_a_repeated_name_is_refused_and_leaves_no_files(tmp_path: Path) -> None:
    weights = [
        ("x", torch.ones(4)),
        ("y", torch.ones(4)),
        ("z", torch.ones(4)),
        ("y", torch.ones(1)),
    ]
    with pytest.raises(ValueError, match="tensor 'y' appears twice"):
        write_sharded(tmp_path, weights, max_shard_bytes=16)  # x, y sealed before the repeat
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="tensor 'x' appears twice"):
        ShardedWriter(tmp_path, [TensorSpec("x", (1,), "F32")] * 2, 16)


def test_tied_and_non_contiguous_tensors_are_written_as_their_own_copies(tmp_path: Path) -> None:
    embedding = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    weights = [
        ("embed.weight", embedding),
        ("lm_head.weight", embedding),  # tied: the same storage under two names
        ("first_rows", embedding[:2]),  # a view into it
        ("transposed", embedding.T),  # not contiguous
    ]
    write_sharded(tmp_path, weights, max_shard_bytes=10**6)
    loaded = load_file(tmp_path / SINGLE_FILE)
    for name, tensor in weights:
        assert torch.equal(loaded[name], tensor), name
    with open(tmp_path / SINGLE_FILE, "rb") as file:
        header = json.loads(file.read(int.from_bytes(file.read(8), "little")))
    assert header["embed.weight"]["data_offsets"] == [0, 48]
    assert header["lm_head.weight"]["data_offsets"] == [48, 96]
    loaded["embed.weight"][0, 0] = -1.0
    assert loaded["lm_head.weight"][0, 0] == 0.0  # separate storage once read back


def test_the_stream_holds_one_tensor_at_a_time(tmp_path: Path) -> None:
    """Every tensor handed over is released before the next is asked for, across shards."""
    refs: list[weakref.ref[torch.Tensor]] = []

    def weights() -> Iterator[tuple[str, torch.Tensor]]:
        for i in range(6):
            assert all(ref() is None for ref in refs), f"a tensor before #{i} is still held"
            tensor = torch.full((4,), float(i))
            refs.append(weakref.ref(tensor))
            yield f"t{i}", tensor
            del tensor

    files = write_sharded(tmp_path, weights(), max_shard_bytes=32)  # two tensors a shard
    assert len(files) == 3
    assert [float(t[0]) for _, t in read_sharded(tmp_path)] == [0, 1, 2, 3, 4, 5]


def test_both_writers_and_the_copy_fallback_write_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [TensorSpec.of(name, tensor) for name, tensor in TENSORS.items()]
    (tmp_path / "planned").mkdir()
    with ShardedWriter(tmp_path / "planned", specs, 48) as writer:
        for name, tensor in TENSORS.items():
            writer.write(name, tensor)
        planned = writer.finish()
    streamed = write_sharded(tmp_path / "streamed", TENSORS.items(), 48)

    def no_kernel_copy(*args: object) -> int:
        raise OSError(errno.ENOSYS, "not here")

    monkeypatch.setattr(os, "copy_file_range", no_kernel_copy)
    buffered = write_sharded(tmp_path / "buffered", TENSORS.items(), 48)
    for files in (planned, streamed, buffered):
        assert [path.name for path in files] == SHARDED
    for a, b, c in zip(planned, streamed, buffered, strict=True):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    index = (tmp_path / "planned" / INDEX_FILE).read_text()
    assert index == (tmp_path / "streamed" / INDEX_FILE).read_text()


def test_a_single_shard_replaces_a_stale_index(tmp_path: Path) -> None:
    write_sharded(tmp_path, TENSORS.items(), max_shard_bytes=48)
    assert write_sharded(tmp_path, TENSORS.items(), 10**6) == [tmp_path / SINGLE_FILE]
    assert not (tmp_path / INDEX_FILE).exists()
    assert weight_files(tmp_path) == [tmp_path / SINGLE_FILE]


def test_nothing_to_write_writes_nothing_and_reads_nothing(tmp_path: Path) -> None:
    assert write_sharded(tmp_path, [], max_shard_bytes=48) == []
    assert weight_files(tmp_path) == [] and list(read_sharded(tmp_path)) == []
    with pytest.raises(ValueError, match="at least 1"):
        write_sharded(tmp_path, TENSORS.items(), max_shard_bytes=0)


def test_weight_files_follow_the_index_and_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILE).write_text(
        json.dumps({"weight_map": {"x": "model-00002-of-00002.safetensors", "y": "model-00001-of-00002.safetensors"}})
    )  # fmt: skip
    assert [path.name for path in weight_files(tmp_path)] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    with pytest.raises(CheckpointError, match=r"model-00001-of-00002\.safetensors: not a readable"):
        list(read_sharded(tmp_path))
    (tmp_path / INDEX_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"index\.json: not a safetensors index"):
        weight_files(tmp_path)


def test_planned_shards_and_header_layout() -> None:
    sizes = {"w": 10, "x": 10, "y": 25, "z": 3}  # float32 entries: 40, 40, 100, 12 bytes
    specs = [TensorSpec(n, (k,), "F32") for n, k in sizes.items()]
    shards = plan_shards(specs, max_shard_bytes=80)
    assert [[t.name for t in shard] for shard in shards] == [["w", "x"], ["y"], ["z"]]
    assert plan_shards([], 80) == []
    header = encode_header([TensorSpec("x", (3,), "F32"), TensorSpec("y", (2, 2), "BF16")])
    length = int.from_bytes(header[:8], "little")
    assert length == len(header) - 8 and length % 8 == 0
    parsed = json.loads(header[8:])
    assert parsed["__metadata__"] == {"format": "pt"}
    assert parsed["x"] == {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}
    assert parsed["y"]["data_offsets"] == [12, 20]


def test_planned_writer_refuses_tensors_out_of_plan(tmp_path: Path) -> None:
    specs = [TensorSpec.of(name, tensor) for name, tensor in TENSORS.items()]
    with ShardedWriter(tmp_path, specs, 10**6) as writer:
        with pytest.raises(ValueError, match="expected"):
            writer.write("b.weight", TENSORS["b.weight"])
        with pytest.raises(ValueError, match="expected"):
            writer.write("a.weight", TENSORS["a.weight"].to(torch.float64))
        writer.write("a.weight", TENSORS["a.weight"])
        with pytest.raises(ValueError, match="after 1 of 6"):
            writer.finish()
    with pytest.raises(ValueError, match=r"'c' has dtype torch\.complex64"):
        TensorSpec.of("c", torch.zeros(2, dtype=torch.complex64))


def test_transformers_loads_a_resharded_model_unchanged(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "resharded"
    out.mkdir()
    for path in tiny_model_dir.iterdir():
        if not path.name.endswith(".safetensors"):
            shutil.copy2(path, out / path.name)
    files = write_sharded(out, read_sharded(tiny_model_dir), max_shard_bytes=1_000_000)
    assert len(files) > 1 and (out / INDEX_FILE).is_file()
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    resharded = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert resharded.keys() == original.keys()
    assert all(torch.equal(resharded[name], original[name]) for name in original)
