"""The CPU learning demo of the RL recipe, end to end as the README runs it (about 15 minutes).

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


@pytest.mark.slow
def test_rl_beats_its_sft_start_by_three_standard_errors(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    synth, reader, run = tmp_path / "synth-short", tmp_path / "reader", tmp_path / "rl-tiny"
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
    main(
        [
            "train",
            str(ROOT / "experiments" / "rl-tiny-cpu.yaml"),
            "--out",
            str(run),
            *("--set", f"model={reader}"),
            *("--set", f"data.train=[{synth / 'dataset'}]"),
        ]
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["heldout_size"] >= 400
    gain, stderr = summary["heldout_gain"], summary["heldout_gain_stderr"]
    assert gain > 3 * stderr, f"held-out gain {gain:.4f} is not above 3 x {stderr:.4f}"
    assert summary["heldout_gain_greedy"] > summary["heldout_gain_greedy_stderr"]
    assert summary["sft_control"]["heldout_reward"] is not None
