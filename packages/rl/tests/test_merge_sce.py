"""SCE's steps on hand-worked tensors, and the invariants of the whole merge.

The running example: base b = 1 everywhere and two models whose deltas are
    dA = [1, -2,  3, 0]
    dB = [3,  2, -1, 1]
Variance across the two models, per entry: [1, 4, 4, 0.25].
Mean squares: A 14/4, B 15/4, so the coefficients are 14/29 and 15/29.
Sum of deltas: [4, 0, 2, 1] -> elected signs [+, none, +, +].
"""

from __future__ import annotations

import pytest
import torch

from qwenlong.core.errors import ConfigError
from qwenlong.rl.merge.sce import (
    SIGN_ELECTIONS,
    combine,
    erase_mask,
    matrix_groups,
    matrix_weights,
    sce_merge,
    select_mask,
)

D_A = [1.0, -2.0, 3.0, 0.0]
D_B = [3.0, 2.0, -1.0, 1.0]


def stacked(*rows: list[float]) -> torch.Tensor:
    """Deltas as the step functions take them: [M, G=1, N], float64 for exact fractions."""
    return torch.tensor(rows, dtype=torch.float64).unsqueeze(1)


def models_of(base: float = 1.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    b = torch.full((4,), base, dtype=torch.float64)
    return b, [
        b + torch.tensor(D_A, dtype=torch.float64),
        b + torch.tensor(D_B, dtype=torch.float64),
    ]


@pytest.mark.parametrize(
    ("top_k", "expected"),
    [
        (1.0, [True, True, True, True]),
        (0.75, [True, True, True, False]),  # k = 3: cut at the 3rd largest variance, 1
        (0.5, [False, True, True, False]),  # k = 2: cut at 4
        (0.2, [False, True, True, False]),  # k = 1: cut at 4, and the tie at 4 is kept too
    ],
)
def test_select_keeps_the_top_fraction_by_variance(top_k: float, expected: list[bool]) -> None:
    assert select_mask(stacked(D_A, D_B), top_k)[0].tolist() == expected


def test_select_keeps_all_of_identical_deltas_whatever_the_fraction() -> None:
    assert select_mask(stacked(D_A, D_A), 0.1).all()


def test_select_rejects_a_fraction_outside_0_1() -> None:
    with pytest.raises(ValueError, match="top_k"):
        select_mask(stacked(D_A, D_B), 0.0)


def test_calculate_weights_are_normalised_mean_squares() -> None:
    deltas = stacked(D_A, D_B)
    everything = torch.ones(1, 4, dtype=torch.bool)
    assert matrix_weights(deltas, everything)[:, 0].tolist() == pytest.approx([14 / 29, 15 / 29])
    # Selecting entries 1 and 2 only: A squares 4 + 9, B squares 4 + 1.
    middle = torch.tensor([[False, True, True, False]])
    assert matrix_weights(deltas, middle)[:, 0].tolist() == pytest.approx([13 / 18, 5 / 18])


def test_calculate_gives_equal_weights_to_a_matrix_nobody_changed() -> None:
    zeros = stacked([0.0] * 4, [0.0] * 4, [0.0] * 4)
    weights = matrix_weights(zeros, torch.ones(1, 4, dtype=torch.bool))
    assert weights[:, 0].tolist() == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("sum", [1.0, 0.0, 1.0, 1.0]),  # sums 4, 0, 2, 1
        ("weighted_sum", [1.0, 1.0, 1.0, 1.0]),  # entry 1: (-2*14 + 2*15)/29 > 0
        ("count", [1.0, 0.0, 0.0, 1.0]),  # entries 1, 2: one vote each way; entry 3: A abstains
    ],
)
def test_sign_elections(rule: str, expected: list[float]) -> None:
    weights = torch.tensor([[[14 / 29]], [[15 / 29]]], dtype=torch.float64)
    assert SIGN_ELECTIONS.get(rule)(stacked(D_A, D_B), weights)[0].tolist() == expected


def test_unknown_sign_election_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: count, sum, weighted_sum"):
        SIGN_ELECTIONS.get("majority")


def test_erase_drops_minority_signs_zero_deltas_and_unelected_entries() -> None:
    elected = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    keep = erase_mask(stacked(D_A, D_B), torch.ones(1, 4, dtype=torch.bool), elected)
    assert keep[:, 0].tolist() == [[True, False, True, False], [True, False, False, True]]


def test_combine_divides_by_the_surviving_weights_and_leaves_erased_entries_at_base() -> None:
    base = torch.full((1, 4), 1.0, dtype=torch.float64)
    weights = torch.tensor([[14 / 29], [15 / 29]], dtype=torch.float64)
    keep = torch.tensor([[[True, False, True, False]], [[True, False, False, True]]])
    merged = combine(base, stacked(D_A, D_B), weights, keep)[0]
    # entry 0: (14*1 + 15*3)/29 / (29/29); entry 2: A alone -> 3; entry 3: B alone -> 1
    assert merged.tolist() == pytest.approx([1 + 59 / 29, 1.0, 1 + 3.0, 1 + 1.0])


@pytest.mark.parametrize(
    ("top_k", "rule", "expected_delta"),
    [
        (1.0, "sum", [59 / 29, 0.0, 3.0, 1.0]),
        (1.0, "weighted_sum", [59 / 29, 2.0, 3.0, 1.0]),
        (1.0, "count", [59 / 29, 0.0, 0.0, 1.0]),
        (0.5, "sum", [0.0, 0.0, 3.0, 0.0]),  # entry 1 ties (-2 + 2): nothing elected
        (0.5, "weighted_sum", [0.0, -2.0, 3.0, 0.0]),  # weights 13/18, 5/18: A wins entry 1
    ],
)
def test_full_merge_matches_the_hand_worked_example(
    top_k: float, rule: str, expected_delta: list[float]
) -> None:
    base, models = models_of(base=1.0)
    result = sce_merge(base, models, top_k, rule)
    assert (result.merged - base).tolist() == pytest.approx(expected_delta)
    assert result.weights.sum(dim=0).tolist() == pytest.approx([1.0])


def test_entries_without_surviving_deltas_are_exactly_the_base() -> None:
    base, models = models_of(base=0.25)
    result = sce_merge(base, models, 0.5, "sum")
    untouched = ~result.keep.any(dim=0)
    assert untouched.tolist() == [True, True, False, True]
    assert torch.equal(result.merged[untouched], base[untouched])


def test_merging_a_model_with_itself_returns_it() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(8, 6, generator=generator)
    model = base + 0.01 * torch.randn(8, 6, generator=generator)
    for top_k in (1.0, 0.3):
        torch.testing.assert_close(sce_merge(base, [model, model], top_k).merged, model)
        torch.testing.assert_close(sce_merge(base, [model], top_k).merged, model)
    assert torch.equal(sce_merge(base, [base, base]).merged, base)


def test_merge_does_not_depend_on_model_order() -> None:
    generator = torch.Generator().manual_seed(1)
    base = torch.randn(5, 7, generator=generator)
    models = [base + torch.randn(5, 7, generator=generator) for _ in range(3)]
    for rule in SIGN_ELECTIONS:
        forward = sce_merge(base, models, 0.6, rule)
        backward = sce_merge(base, models[::-1], 0.6, rule)
        torch.testing.assert_close(forward.merged, backward.merged)
        torch.testing.assert_close(forward.weights, backward.weights.flip(0))


def test_deltas_that_agree_in_sign_merge_to_the_weighted_average() -> None:
    """With one sign everywhere nothing is erased, so the divisor is sum(w) = 1 at every entry."""
    generator = torch.Generator().manual_seed(2)
    base = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    deltas = [torch.rand(4, 4, generator=generator, dtype=torch.float64) * s for s in (1, 3)]
    squares = torch.tensor([float(d.square().mean()) for d in deltas], dtype=torch.float64)
    weights = squares / squares.sum()
    expected = base + weights[0] * deltas[0] + weights[1] * deltas[1]
    merged = sce_merge(base, [base + d for d in deltas]).merged
    torch.testing.assert_close(merged, expected)


def test_stacked_matrices_merge_like_separate_matrices() -> None:
    generator = torch.Generator().manual_seed(3)
    base = torch.randn(3, 4, 5, generator=generator)
    models = [base + torch.randn(3, 4, 5, generator=generator) * (i + 1) for i in range(2)]
    fused = sce_merge(base, models, 0.4)
    assert matrix_groups(base.shape) == (3, 20)
    assert fused.weights.shape == (2, 3)
    for e in range(3):
        alone = sce_merge(base[e], [m[e] for m in models], 0.4)
        torch.testing.assert_close(fused.merged[e], alone.merged)
        torch.testing.assert_close(fused.weights[:, e], alone.weights[:, 0])


def test_half_precision_inputs_merge_in_float32() -> None:
    base, models = models_of()
    result = sce_merge(base.to(torch.bfloat16), [m.to(torch.bfloat16) for m in models])
    assert result.merged.dtype == torch.float32
    assert (result.merged - 1).tolist() == pytest.approx([59 / 29, 0.0, 3.0, 1.0], rel=1e-6)
