"""DAPO's handling of responses that run into the output limit (Yu et al. 2025, Sec. 3.4).

A response cut by `max_new_tokens` has no ending, so its reward says little about its reasoning:
paying it 0 punishes a possibly sound but long chain, and a reward rule that reads the text's
last "answer is" can even pay an answer line repeated to the limit (seen on the CPU demo). DAPO
offers two remedies, both off by default here (the paper does not say it uses them):

- overlong filtering: truncated responses leave the loss altogether (no gradient, not counted
  in the token normaliser);
- soft overlong punishment: a length-aware penalty added to the reward over the last
  `soft_buffer` tokens before the limit L: 0 up to L - buffer, then falling linearly to
  -`soft_penalty` at L (DAPO's R_length with L_cache = buffer).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from qwenlong.core.config import ConfigModel


class OverlongConfig(ConfigModel):
    """DAPO's overlong filtering and soft punishment (ours to switch on; not in the paper)."""

    filter_truncated: bool = False
    """Drop responses cut by the output limit from the loss (DAPO's overlong filtering)."""
    soft_buffer: int | None = Field(default=None, ge=1)
    """Tokens before the stage's output limit over which the soft penalty grows (DAPO: 4,096
    with a 20,480 limit); None: no soft punishment."""
    soft_penalty: float = Field(default=1.0, gt=0)
    """The penalty at the limit itself (DAPO: 1, the reward's whole range)."""


def soft_overlong_penalty(
    lengths: Tensor, max_tokens: int, buffer: int, penalty: float = 1.0
) -> Tensor:
    """[B] float32 <= 0: DAPO's R_length for responses of `lengths` tokens under a limit of
    `max_tokens`; a buffer longer than the limit starts the ramp at 0 tokens."""
    start = max(max_tokens - buffer, 0)
    span = max(max_tokens - start, 1)
    over = (lengths.float() - start).clamp(min=0.0) / span
    return -penalty * over.clamp(max=1.0)


def shaped_rewards(
    rewards: Tensor, lengths: Tensor, max_tokens: int, config: OverlongConfig
) -> Tensor:
    """The rewards the advantages see: with a soft buffer, plus the soft overlong penalty."""
    if config.soft_buffer is None:
        return rewards
    return rewards + soft_overlong_penalty(
        lengths, max_tokens, config.soft_buffer, config.soft_penalty
    )


def kept_responses(
    response: Tensor, truncated_tokens: Tensor | None, config: OverlongConfig
) -> Tensor:
    """[N] bool: the response tokens that may train; with overlong filtering, none of a
    truncated response (`truncated_tokens`: each token's sequence was truncated)."""
    if not config.filter_truncated or truncated_tokens is None:
        return response.bool()
    return response.bool() & ~truncated_tokens.bool()
