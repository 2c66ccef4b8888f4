"""Reading HF safetensors checkpoints one tensor at a time, and checking they can be merged.

A checkpoint directory holds either one `model.safetensors`, several `*.safetensors` files, or
shards listed in `model.safetensors.index.json` (the index wins when present). Only headers are
read up front: names, shapes and dtypes, enough to check every model against the base before a
single byte of output is written. Tensor data is read on demand (`qwenlong.core.safetensors_io`
reads with `pread`), so a merge holds only the tensors it is working on, not mapped pages of
whole shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from torch import Tensor

from qwenlong.core.errors import CheckpointError
from qwenlong.core.safetensors_io import INDEX_FILE, SafetensorsFile, read_weight_map

MERGEABLE = frozenset({"F64", "F32", "F16", "BF16"})
"""Dtypes SCE merges; other non-float tensors are copied from the base."""

QUANTIZED = frozenset({"F8_E4M3", "F8_E5M2"})
"""Dtypes that are refused: an fp8 weight means nothing without its scale tensor."""


@dataclass(frozen=True)
class TensorInfo:
    """What a header says about one tensor."""

    shape: tuple[int, ...]
    dtype: str
    """The safetensors dtype code (F32, BF16, I64, ...)."""
    file: Path
    """The file holding it, named in errors."""


class TensorSource(Protocol):
    """A checkpoint as the streaming merge sees it: names, headers, and one tensor at a time."""

    label: str
    """How errors name it: "base", "models[1]"."""

    def names(self) -> list[str]:
        """Tensor names in storage order (shard by shard, offset by offset)."""
        ...

    def info(self, name: str) -> TensorInfo: ...

    def get(self, name: str) -> Tensor:
        """A freshly read CPU tensor; nothing is cached."""
        ...


class SafetensorsCheckpoint:
    """An HF checkpoint directory opened for reading (a context manager that closes its files)."""

    def __init__(self, directory: Path | str, label: str) -> None:
        self.directory = Path(directory)
        self.label = label
        if not self.directory.is_dir():
            raise CheckpointError(f"{label} {self.directory}: no such model directory")
        self._files: dict[Path, SafetensorsFile] = {}
        self._infos: dict[str, TensorInfo] = {}
        try:
            weight_map = read_weight_map(self.directory)
            if weight_map is not None:
                self._read_index(weight_map)
            else:
                self._read_files(sorted(self.directory.glob("*.safetensors")))
        except BaseException:
            self.close()
            raise

    def names(self) -> list[str]:
        return list(self._infos)

    def info(self, name: str) -> TensorInfo:
        return self._infos[name]

    def get(self, name: str) -> Tensor:
        return self._files[self._infos[name].file].get(name)

    def close(self) -> None:
        """Release the files; the object is unusable afterwards."""
        for file in self._files.values():
            file.close()
        self._files.clear()

    def __enter__(self) -> SafetensorsCheckpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read_index(self, weight_map: dict[str, str]) -> None:
        """Shards as the index lists them; every listed tensor must be in its shard."""
        index = self.directory / INDEX_FILE
        by_file: dict[str, set[str]] = {}
        for name, file in weight_map.items():
            by_file.setdefault(file, set()).add(name)
        for file, listed in sorted(by_file.items()):
            path = self.directory / file
            if not path.is_file():
                raise CheckpointError(f"{index}: shard {file} (holding {min(listed)!r}) is missing")
            for name, info in self._headers(path).items():
                if name in listed:
                    self._infos[name] = info
            absent = listed - self._infos.keys()
            if absent:
                raise CheckpointError(f"{index}: tensor {min(absent)!r} is not in shard {file}")

    def _read_files(self, files: list[Path]) -> None:
        """Every safetensors file in the directory; a name in two files is ambiguous."""
        if not files:
            raise CheckpointError(f"{self.label} {self.directory}: no .safetensors files")
        for path in files:
            for name, info in self._headers(path).items():
                if name in self._infos:
                    first = self._infos[name].file.name
                    raise CheckpointError(
                        f"{path}: tensor {name!r} is also in {first} and there is no {INDEX_FILE}"
                    )
                self._infos[name] = info

    def _headers(self, path: Path) -> dict[str, TensorInfo]:
        """Open one file and read its header, in storage order."""
        file = SafetensorsFile(path)
        self._files[path] = file
        return {name: TensorInfo(spec.shape, spec.dtype, path) for name, spec in file.specs.items()}


def check_compatible(base: TensorSource, models: list[TensorSource]) -> None:
    """Every model holds exactly the base's tensor names and shapes, and nothing is quantized.

    Dtypes may differ between models (a bf16 model merges with an fp32 base), except that a
    tensor must be mergeable in every checkpoint or in none. The first problem found raises one
    line naming the tensor and the file.
    """
    base_names = set(base.names())
    for name in base.names():
        _refuse_quantized(base, name)
    for model in models:
        names = set(model.names())
        missing = sorted(base_names - names)
        if missing:
            where = base.info(missing[0]).file
            raise CheckpointError(
                f"{model.label}: tensor {missing[0]!r} (in the base's {where}) is missing"
            )
        extra = sorted(names - base_names)
        if extra:
            where = model.info(extra[0]).file
            raise CheckpointError(f"{where}: tensor {extra[0]!r} is not in the base")
        for name in base.names():
            _refuse_quantized(model, name)
            ours, theirs = base.info(name), model.info(name)
            if ours.shape != theirs.shape:
                raise CheckpointError(
                    f"{theirs.file}: tensor {name!r} has shape {list(theirs.shape)}, "
                    f"the base ({ours.file}) has {list(ours.shape)}"
                )
            if (ours.dtype in MERGEABLE) != (theirs.dtype in MERGEABLE):
                raise CheckpointError(
                    f"{theirs.file}: tensor {name!r} is {theirs.dtype}, "
                    f"the base ({ours.file}) has {ours.dtype}"
                )


def _refuse_quantized(source: TensorSource, name: str) -> None:
    info = source.info(name)
    if info.dtype in QUANTIZED:
        raise CheckpointError(
            f"{info.file}: tensor {name!r} is {info.dtype}; dequantize the checkpoint before merging"
        )
