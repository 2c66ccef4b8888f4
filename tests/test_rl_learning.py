"""The CPU learning demo of the RL recipe, end to end as the README runs it (about 15 minutes),
and the same run on the Megatron-Core policy.

synth writes the short reading data, a tiny Qwen3-MoE with a tokenizer trained on that world is
built, and `experiments/rl-tiny-cpu.yaml` gives it an SFT warm start, GRPO on Ray, a held-out
evaluation before and after, and the same-wall-time SFT control. RL must raise the held-out
reward by more than three standard errors of the paired gain, sampled at the paper's evaluation
temperature, and raise the greedy answer's reward too: the reward pays one answer, not a list of
candidates (`reward.answer_max_extra_words`), so the gain cannot come from gaming cover-EM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.app.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_inputs(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(the synthesized short-reading data, the tiny reader model), as the README makes them."""
    root = tmp_path_factory.mktemp("demo")
    synth, reader = root / "synth-short", root / "reader"
    main(
        [
            "synth",
            str(ROOT / "experiments" / "synth-short-cpu.yaml"),
            "--out",
            str(synth),
            "--set",
            f"tokenizer={tiny_model_dir}",
        ]
    )
    main(
        [
            "models",
            "tiny",
            "--out",
            str(reader),
            *("--vocab-size", "4096", "--num-kv-heads", "4", "--rope-theta", "1e4"),
            *("--corpus", str(synth / "corpus" / "documents.parquet")),
            "--learn-prompts",
        ]
    )
    return synth, reader


def _train(inputs: tuple[Path, Path], run: Path, *overrides: str) -> dict:
    synth, reader = inputs
    main(
        [
            "train",
            str(ROOT / "experiments" / "rl-tiny-cpu.yaml"),
            "--out",
            str(run),
            *("--set", f"model={reader}"),
            *("--set", f"data.train=[{synth / 'dataset'}]"),
            *(item for override in overrides for item in ("--set", override)),
        ]
    )
    return json.loads((run / "summary.json").read_text())


@pytest.mark.slow
def test_rl_beats_its_sft_start_by_three_standard_errors(
    demo_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    summary = _train(demo_inputs, tmp_path / "rl-tiny")
    assert summary["heldout_size"] >= 400
    gain, stderr = summary["heldout_gain"], summary["heldout_gain_stderr"]
    assert gain > 3 * stderr, f"held-out gain {gain:.4f} is not above 3 x {stderr:.4f}"
    assert summary["heldout_gain_greedy"] > summary["heldout_gain_greedy_stderr"]
    assert summary["sft_control"]["heldout_reward"] is not None


@pytest.mark.slow
def test_the_same_run_learns_on_the_megatron_policy(
    demo_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Megatron-Core at world size 1 (packed micro-batches of 1,024 tokens on the CPU), no
    control: RL must still gain more than three standard errors, sampled and greedy."""
    summary = _train(
        demo_inputs,
        tmp_path / "rl-tiny-megatron",
        "policy.backend=megatron",
        "policy.megatron.lr=5e-4",
        "policy.megatron.torch_threads=2",
        "policy.megatron.micro_batch_tokens=1024",
        "sft.control=false",
    )
    gain, stderr = summary["heldout_gain"], summary["heldout_gain_stderr"]
    assert gain > 3 * stderr, f"held-out gain {gain:.4f} is not above 3 x {stderr:.4f}"
    assert summary["heldout_gain_greedy"] > summary["heldout_gain_greedy_stderr"]
