"""Smoke run of verification on the tiny model: real generation, real scoring, stores written."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from qwenlong.core.records import TaskSample
from qwenlong.synth.verify import VerifyConfig, verify_samples


def test_tiny_model_verification_scores_every_output(
    tiny_chat_model, tiny_model_dir: Path, tmp_path: Path
) -> None:
    samples = [
        TaskSample(
            id=f"s{i}",
            task_type="reading",
            question=f"What colour is door {i}?",
            answers=["vermilion"],
            context=f"Door {i} is painted vermilion. " * 20,
        )
        for i in range(2)
    ]
    config = VerifyConfig(k=2, max_new_tokens=6, max_input_tokens=2048)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    result = verify_samples(samples, tiny_chat_model, config, tmp_path, tokenizer=tokenizer)
    grounding = [
        json.loads(line) for line in (tmp_path / "grounding.jsonl").read_text().splitlines()
    ]
    assert [r["id"] for r in grounding] == ["s0", "s1"]
    assert all(r["k"] == 2 and len(r["values"]) == 2 for r in grounding)
    # every sample is accounted for: kept with a pass rate, or dropped with a check's reason
    assert len(result.samples) + len(result.drops) == 2
    assert {d.reason for d in result.drops} <= {"grounding", "robustness"}
    assert all(0 < float(s.meta["pass_rate"]) <= 1 for s in result.samples)
