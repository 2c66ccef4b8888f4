"""SCE model merging (FuseChat): select, calculate, erase, on one tensor at a time.

Every model i contributes a delta (task vector) d_i = theta_i - theta_base. For each parameter
matrix, SCE then

1. **selects** the entries whose deltas vary most across the models: the top `top_k` fraction
   by variance (population variance over the models). Entries outside the selection take no
   delta at all and keep the base value;
2. **calculates** one merging coefficient per model for the matrix, proportional to the mean
   square of its selected delta, so a model that moved a matrix more has more say in it;
3. **erases** the entries of each delta whose sign disagrees with the elected sign of that
   entry (FuseChat elects the sign of the sum of the deltas; `SIGN_ELECTIONS` holds the rules);

and merges what survives: merged = base + sum_i(w_i * keep_i * d_i) / sum_i(w_i * keep_i).

The divisor counts, per entry, only the models whose delta survived, as in TIES's disjoint mean:
a model that left an entry alone (zero delta) or was outvoted does not dilute the others. An
entry where every delta was erased (not selected, all zero, or a tie that elects no sign) keeps
the base value rather than dividing by zero.

"Matrix" means the whole tensor for 1-D and 2-D tensors. A tensor with more dimensions is a
stack of matrices over its leading dimensions (fused MoE experts, [experts, out, in]), and each
gets its own selection threshold and coefficients, so a fused checkpoint merges exactly as its
per-expert form would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from qwenlong.core.registry import Registry

SignElection = Callable[[Tensor, Tensor], Tensor]
"""(deltas [M, G, N], weights [M, G, 1]) -> the elected sign of every entry, [G, N] in {-1, 0, 1}.

M models, G matrices, N entries per matrix. 0 elects no sign: every delta of that entry is erased.
The rules, like the other steps, loop over the models rather than broadcast across them, so their
temporaries are the size of one matrix, not M of them.
"""

SIGN_ELECTIONS: Registry[SignElection] = Registry("sign election")


@SIGN_ELECTIONS.register("sum")
def sign_of_sum(deltas: Tensor, weights: Tensor) -> Tensor:
    """FuseChat's rule: the sign of the plain sum of the deltas, so the side with more total
    magnitude wins. An exact tie elects nothing; mergekit's SCE breaks it toward +, but a
    symmetric rule keeps the merge independent of the sign convention."""
    del weights
    return torch.sign(deltas.sum(dim=0))


@SIGN_ELECTIONS.register("weighted_sum")
def sign_of_weighted_sum(deltas: Tensor, weights: Tensor) -> Tensor:
    """The sign of the SCE-weighted sum: the direction the merge itself would move before erasing,
    so a model that barely touched this matrix cannot outvote one that moved it a lot."""
    total = torch.zeros_like(deltas[0])
    for delta, weight in zip(deltas, weights, strict=True):
        total.add_(delta * weight)
    return torch.sign(total)


@SIGN_ELECTIONS.register("count")
def sign_of_count(deltas: Tensor, weights: Tensor) -> Tensor:
    """The sign most models agree on, magnitudes ignored (zero deltas abstain); a tie elects nothing."""
    del weights
    votes = torch.zeros_like(deltas[0])
    for delta in deltas:
        votes.add_(torch.sign(delta))
    return torch.sign(votes)


@dataclass(frozen=True)
class SceResult:
    """The merged tensor and what each step decided, for inspection and tests."""

    merged: Tensor
    """base + the merged delta, in the compute dtype, shaped like the base."""
    selected: Tensor
    """Bool, shaped like the base: entries kept by the select step."""
    weights: Tensor
    """[M, G]: the calculate step's coefficient of each model for each matrix; each column sums to 1."""
    keep: Tensor
    """Bool [M, *base.shape]: deltas that survived select and erase."""


def matrix_groups(shape: Sequence[int]) -> tuple[int, int]:
    """(G, N): how many matrices a tensor of `shape` holds and how many entries each has."""
    if len(shape) <= 2:
        return 1, math.prod(shape)
    return math.prod(shape[:-2]), shape[-2] * shape[-1]


def select_mask(deltas: Tensor, top_k: float) -> Tensor:
    """Select: per matrix, True where the variance across models is among the top `top_k` fraction.

    `deltas` is [M, G, N]; the result is [G, N]. The cut is the k-th largest variance with
    k = ceil(top_k * N), and every entry that ties with it is kept, so the mask does not depend
    on the order of the entries (and identical deltas, of zero variance everywhere, keep all).
    """
    if not 0.0 < top_k <= 1.0:
        raise ValueError(f"top_k must be in (0, 1], got {top_k}")
    variance = deltas.var(dim=0, unbiased=False)
    entries = variance.shape[-1]
    if top_k == 1.0 or entries == 0:
        return torch.ones_like(variance, dtype=torch.bool)
    k = max(1, math.ceil(top_k * entries))
    cut = torch.kthvalue(variance, entries - k + 1, dim=-1, keepdim=True).values
    return variance >= cut


def matrix_weights(deltas: Tensor, selected: Tensor) -> Tensor:
    """Calculate: each model's coefficient per matrix, its selected delta's mean square, normalised.

    `deltas` [M, G, N], `selected` [G, N] -> [M, G], each column summing to 1. A matrix that no
    model changed gets equal coefficients (they multiply zero deltas, so any choice merges to the
    base; equal ones keep the normalisation well defined).
    """
    models, entries = deltas.shape[0], deltas.shape[-1]
    mean_square = torch.stack(
        [torch.where(selected, delta, 0).square().sum(dim=-1) / max(entries, 1) for delta in deltas]
    )
    total = mean_square.sum(dim=0, keepdim=True)
    uniform = torch.full_like(mean_square, 1.0 / models)
    return torch.where(total > 0, mean_square / torch.where(total > 0, total, 1), uniform)


def erase_mask(deltas: Tensor, selected: Tensor, elected: Tensor) -> Tensor:
    """Erase: True where a delta is selected, non-zero and has the elected sign of its entry.

    `deltas` [M, G, N], `selected` and `elected` [G, N] -> bool [M, G, N]. An entry whose elected
    sign is 0 loses every delta.
    """
    electable = (elected != 0) & selected
    return torch.stack([(torch.sign(delta) == elected) & electable for delta in deltas])


def combine(base: Tensor, deltas: Tensor, weights: Tensor, keep: Tensor) -> Tensor:
    """base + sum_i(w_i keep_i d_i) / sum_i(w_i keep_i); entries with no surviving delta keep the base.

    `base` [G, N], `deltas` and `keep` [M, G, N], `weights` [M, G].
    """
    numerator = torch.zeros_like(base)
    divisor = torch.zeros_like(base)
    for delta, weight, kept in zip(deltas, weights, keep, strict=True):
        kept_weight = weight.unsqueeze(-1) * kept
        numerator.add_(kept_weight * delta)
        divisor.add_(kept_weight)
    # Where nothing survived every term of the numerator is zero too: dividing by 1 leaves the
    # merged delta at 0. In place, to hold no more full-size temporaries than needed.
    divisor.masked_fill_(divisor == 0, 1)
    return numerator.div_(divisor).add_(base)


def sce_merge_deltas(
    base: Tensor, deltas: Tensor, top_k: float = 1.0, sign_election: str = "sum"
) -> SceResult:
    """SCE on a base tensor and its models' stacked deltas ([M, *base.shape], one dtype).

    This is the form the streaming merge uses: it fills `deltas` one model at a time, so only
    one model tensor is ever loaded beside them.
    """
    if deltas.shape[1:] != base.shape:
        raise ValueError(f"deltas {tuple(deltas.shape)} do not stack base {tuple(base.shape)}")
    elect = SIGN_ELECTIONS.get(sign_election)
    models = deltas.shape[0]
    groups, entries = matrix_groups(base.shape)
    flat = deltas.reshape(models, groups, entries)
    selected = select_mask(flat, top_k)
    weights = matrix_weights(flat, selected)
    kept = flat if top_k == 1.0 else torch.where(selected, flat, 0)  # no copy when all selected
    elected = elect(kept, weights.unsqueeze(-1))
    keep = erase_mask(kept, selected, elected)
    del elected
    merged = combine(base.reshape(groups, entries), kept, weights, keep)
    return SceResult(
        merged=merged.reshape(base.shape),
        selected=selected.reshape(base.shape),
        weights=weights,
        keep=keep.reshape(deltas.shape),
    )


def sce_merge(
    base: Tensor, models: Sequence[Tensor], top_k: float = 1.0, sign_election: str = "sum"
) -> SceResult:
    """SCE-merge `models` onto `base` (all the same shape), computing in float32 or wider."""
    if not models:
        raise ValueError("sce_merge needs at least one model")
    compute = compute_dtype(base.dtype, *(model.dtype for model in models))
    base_c = base.to(compute)
    deltas = torch.stack([model.to(compute) - base_c for model in models])
    return sce_merge_deltas(base_c, deltas, top_k, sign_election)


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float32, or float64 when any input is float64: bf16 and fp16 deltas lose too much precision."""
    result = torch.float32
    for dtype in dtypes:
        result = torch.promote_types(result, dtype)
    return result
