"""SCE model merging (FuseChat) over safetensors checkpoints, streamed tensor by tensor.

The recipe merges the Stage-3 model with the Memory-RL expert before Stage-4 (RECIPE.md
section 2). `sce` holds the algorithm as pure tensor functions, `checkpoint` reads and checks
HF checkpoint directories, `stream` ties them to the sharded safetensors writer of
`qwenlong.core.safetensors_io` so memory stays at one tensor per model; `qwenlong merge
CONFIG.yaml` runs it. It lives in rl beside the training checkpoints it merges, and imports
nothing of rl outside this sub-package.
"""

from qwenlong.rl.merge.checkpoint import CheckpointError, SafetensorsCheckpoint
from qwenlong.rl.merge.config import MergeConfig
from qwenlong.rl.merge.sce import SIGN_ELECTIONS, SceResult, sce_merge, sce_merge_deltas
from qwenlong.rl.merge.stream import MergeSummary, merge_checkpoints, stream_merge

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
