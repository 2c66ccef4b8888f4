"""SCE model merging (FuseChat) over safetensors checkpoints, streamed tensor by tensor.

The recipe merges the Stage-3 model with the Memory-RL expert before Stage-4 (RECIPE.md
section 2). `sce` holds the algorithm as pure tensor functions, `checkpoint` reads and checks
HF checkpoint directories, `writer` streams sharded safetensors out, and `stream` ties them
together so memory stays at one tensor per model; `qwenlong merge CONFIG.yaml` runs it.
"""

from qwenlong.memagent.merge.checkpoint import CheckpointError, SafetensorsCheckpoint
from qwenlong.memagent.merge.config import MergeConfig
from qwenlong.memagent.merge.sce import SIGN_ELECTIONS, SceResult, sce_merge, sce_merge_deltas
from qwenlong.memagent.merge.stream import MergeSummary, merge_checkpoints, stream_merge

__all__ = [
    "SIGN_ELECTIONS",
    "CheckpointError",
    "MergeConfig",
    "MergeSummary",
    "SafetensorsCheckpoint",
    "SceResult",
    "merge_checkpoints",
    "sce_merge",
    "sce_merge_deltas",
    "stream_merge",
]
