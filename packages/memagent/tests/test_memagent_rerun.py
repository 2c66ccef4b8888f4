"""`qwenlong memagent` rerun into its own --out: a resumed run's predictions and summary are
byte-for-byte a clean run's with one metrics record per batch; --overwrite equals a fresh run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import BackendUnavailable, ConfigError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.core.rundir import read_metrics
from qwenlong.memagent.prompts import FINAL_INTRO
from qwenlong.memagent.run import MemAgentRunConfig, run_memagent

RESULTS = ("predictions.jsonl", "summary.json")


class Keeper:
    """Keeps the first memory it is given, then answers "w0"; unreachable once it sees
    `fail_on` in a prompt (an outage in the middle of the run)."""

    name = "keeper"

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        replies = []
        for conversation in conversations:
            prompt = conversation[-1]["content"]
            if self.fail_on is not None and self.fail_on in prompt:
                raise BackendUnavailable("http://127.0.0.1:9/v1: connection refused")
            final = prompt.startswith(FINAL_INTRO)
            text = "Therefore, the answer is w0" if final else "<memory>w0</memory><plan>p</plan>"
            replies.append([Completion(text)] * sampling.n)
        return replies

    def close(self) -> None:
        pass


def _config(tmp_path: Path, tokenizer: Path, **extra: object) -> MemAgentRunConfig:
    data = tmp_path / "data.parquet"
    samples = [
        TaskSample(
            id=f"s{i}",
            task_type="reading",
            question=f"First word of document {i}?",
            answers=[f"w{i}"],
            context=f"w{i} " + "words follow. " * (i + 2),
        )
        for i in range(4)
    ]
    write_samples(samples, data)
    return MemAgentRunConfig(
        model=BackendConfig(model=str(tokenizer)),
        tokenizer=str(tokenizer),
        memagent={"chunk_tokens": 16, "memory_tokens": 64, "plan_tokens": 16},
        sampling={"max_new_tokens": 16, "seed": 5},
        batch_size=2,
        dataset={"path": data},
        **extra,
    )


def test_resumed_run_matches_a_clean_one_with_one_record_per_batch(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, tiny_model_dir)
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run_memagent(config, clean, model=Keeper())
    with pytest.raises(BackendUnavailable):  # the second batch is cut off halfway
        run_memagent(config, resumed, model=Keeper(fail_on="document 3?"))
    summary = run_memagent(config, resumed, model=Keeper())
    assert (summary["answered_now"], summary["resumed"]) == (2, 2)
    run_memagent(config, resumed, model=Keeper())  # nothing left: no batch is logged again
    for name in RESULTS:
        assert (resumed / name).read_bytes() == (clean / name).read_bytes(), name
    assert [r["step"] for r in read_metrics(resumed)] == [0, 1]


def test_changed_sampling_is_refused_and_overwrite_equals_a_fresh_run(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run_memagent(_config(tmp_path, tiny_model_dir), out, model=Keeper())
    greedy = _config(tmp_path, tiny_model_dir, samples_per_question=2)
    with pytest.raises(ConfigError, match=r"\(samples_per_question: 1 -> 2\); pass --overwrite"):
        run_memagent(greedy, out, model=Keeper())
    run_memagent(greedy, out, model=Keeper(), overwrite=True)
    run_memagent(greedy, tmp_path / "fresh", model=Keeper())
    for name in (*RESULTS, "trace.jsonl", "config.yaml"):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    assert len(read_metrics(out)) == len(read_metrics(tmp_path / "fresh")) == 2
