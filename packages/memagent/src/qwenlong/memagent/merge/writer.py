"""Writing sharded safetensors one tensor at a time, in the layout transformers loads.

`safetensors.torch.save_file` needs every tensor of a file in memory at once, which would make a
merge's memory grow with the shard size. A safetensors file is an 8-byte little-endian header
length, a JSON header giving each tensor's dtype, shape and byte range, then the raw bytes.
Since a merge knows every output name, shape and dtype before it computes anything, the
headers can be written first and each tensor's bytes appended as soon as it is computed, then
dropped. Shards are planned greedily in the given order up to a byte budget and named like
transformers' (`model-00001-of-00003.safetensors` plus `model.safetensors.index.json`, or a
single `model.safetensors`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import torch
from torch import Tensor

from qwenlong.memagent.merge.checkpoint import DTYPES, INDEX_FILE

ITEM_BYTES = {code: dtype.itemsize for code, dtype in DTYPES.items()}
CODES = {dtype: code for code, dtype in DTYPES.items()}


@dataclass(frozen=True)
class PlannedTensor:
    """One output tensor as its header will describe it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    """safetensors dtype code."""

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * ITEM_BYTES[self.dtype]


def plan_shards(
    tensors: Sequence[PlannedTensor], max_shard_bytes: int
) -> list[list[PlannedTensor]]:
    """Consecutive groups of `tensors`, each at most `max_shard_bytes` unless one tensor alone is
    larger (it then fills a shard of its own). Order is kept, so related tensors stay together."""
    shards: list[list[PlannedTensor]] = [[]]
    size = 0
    for tensor in tensors:
        if shards[-1] and size + tensor.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(tensor)
        size += tensor.nbytes
    return shards if shards[0] else []


def shard_names(count: int) -> list[str]:
    """transformers' file names for `count` shards."""
    if count == 1:
        return ["model.safetensors"]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def encode_header(tensors: Sequence[PlannedTensor]) -> bytes:
    """Length prefix and JSON header for one file, padded with spaces to 8-byte alignment so the
    data that follows is aligned for any dtype."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for tensor in tensors:
        end = offset + tensor.nbytes
        header[tensor.name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


class ShardedWriter:
    """Streams the planned tensors, in plan order, into shards under `directory`.

    `write` must be called once per planned tensor, in order, with a tensor of the planned shape
    and dtype; it keeps no reference to it. `finish` checks everything was written and writes the
    index. Used as a context manager, an exception leaves the open file closed.
    """

    def __init__(
        self, directory: Path, tensors: Sequence[PlannedTensor], max_shard_bytes: int
    ) -> None:
        if sys.byteorder != "little":
            raise RuntimeError("safetensors data is little-endian; this writer assumes that host")
        self.directory = directory
        self.shards = plan_shards(tensors, max_shard_bytes)
        self.files = shard_names(len(self.shards))
        self._shard = -1
        self._position = 0
        self._written = 0
        self._file: BinaryIO | None = None

    def write(self, name: str, tensor: Tensor) -> None:
        """Append one tensor's bytes, opening the next shard when the current one is full."""
        if self._file is None or self._position == len(self.shards[self._shard]):
            self._next_file()
        planned = self.shards[self._shard][self._position]
        code = CODES.get(tensor.dtype)
        got = (name, tuple(tensor.shape), code)
        if got != (planned.name, planned.shape, planned.dtype):
            raise ValueError(f"writer expected {planned}, got {got}")
        if tensor.numel():
            data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            assert self._file is not None
            self._file.write(memoryview(data.numpy()))
        self._position += 1
        self._written += 1

    def finish(self) -> list[str]:
        """Close the last shard, write the index when there are several; return the file names."""
        total = sum(len(shard) for shard in self.shards)
        if self._written != total:
            raise ValueError(f"writer finished after {self._written} of {total} tensors")
        self._close()
        if len(self.shards) > 1:
            index = {
                "metadata": {"total_size": sum(t.nbytes for s in self.shards for t in s)},
                "weight_map": {
                    t.name: file
                    for shard, file in zip(self.shards, self.files, strict=True)
                    for t in shard
                },
            }
            (self.directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
        return list(self.files)

    def _next_file(self) -> None:
        self._close()
        self._shard += 1
        self._position = 0
        if self._shard >= len(self.shards):
            raise ValueError("writer got more tensors than planned")
        self._file = open(self.directory / self.files[self._shard], "wb")  # noqa: SIM115
        self._file.write(encode_header(self.shards[self._shard]))

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()
