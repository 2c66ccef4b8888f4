"""Copying named tensors into a live model: the receiving end of weight sync.

The policy streams (name, tensor) pairs and every consumer (a rollout engine, a policy resumed
from a checkpoint) copies them into its own parameters in place, so no second copy of the model
is ever built. A silent partial load would make rollouts come from a model that is neither the
old nor the new policy, so the copy is strict: unknown names, shape mismatches and names never
sent are errors that say which tensor and where.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from qwenlong.core.errors import BackendError


def load_named_tensors(model: nn.Module, weights: Iterable[tuple[str, Tensor]], where: str) -> int:
    """Copy each (name, tensor) into `model.state_dict()[name]` in place; return how many.

    Names are those of `model.state_dict()` (the loaded transformers module). Dtype and device
    are converted by the copy (a float32 policy can feed a bfloat16 engine). Tied tensors (an
    output head sharing the embedding) count as received when either name is sent. `where`
    names the receiver in error messages. (`keep_vars` makes tied names map to the same
    Parameter object, which is how they are recognised.) An error raised midway leaves the tensors already
    copied in place: the caller should treat the model as unusable.
    """
    targets = model.state_dict(keep_vars=True)
    received: set[int] = set()
    count = 0
    with torch.no_grad():
        for name, tensor in weights:
            target = targets.get(name)
            if target is None:
                raise BackendError(f"{where}: load_weights got unknown tensor {name!r}")
            if tuple(tensor.shape) != tuple(target.shape):
                raise BackendError(
                    f"{where}: load_weights tensor {name!r} has shape {tuple(tensor.shape)}, "
                    f"the model's is {tuple(target.shape)}"
                )
            target.copy_(tensor)
            received.add(id(target))
            count += 1
    missing = [name for name, target in targets.items() if id(target) not in received]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise BackendError(f"{where}: load_weights never received {shown}{more}")
    return count
