"""The row format of each layer spec: how `policy.megatron.layers` takes a packed micro-batch
(qwenlong.rl.megatron.row for the local layers, qwenlong.rl.megatron.thd_row for Transformer
Engine's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qwenlong.rl.interfaces import PackedBatch
from qwenlong.rl.megatron.row import PackedRow, build_row, row_tokens
from qwenlong.rl.megatron.thd_row import build_thd_row, thd_tokens


@dataclass(frozen=True)
class RowFormat:
    """How one layer spec takes a packed micro-batch."""

    tokens: Callable[[PackedBatch, int], int]
    """(micro-batch, CP size) -> the fewest tokens its row may have over the whole CP group."""
    build: Callable[[PackedBatch, int, int, int], PackedRow]
    """(micro-batch, row length, CP size, CP rank) -> this rank's part of the row."""


ROW_FORMATS: dict[str, RowFormat] = {
    "local": RowFormat(row_tokens, build_row),
    "transformer_engine": RowFormat(thd_tokens, build_thd_row),
}
"""{policy.megatron.layers: its row format}."""
