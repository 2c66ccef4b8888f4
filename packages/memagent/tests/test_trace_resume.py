"""The JSONL trace and resuming a `qwenlong memagent` run by sample id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import BackendUnavailable, DatasetError
from qwenlong.core.records import Completion, TaskSample
from qwenlong.memagent.interfaces import AgentResult, AgentStep, MemoryState
from qwenlong.memagent.prompts import EMPTY_MEMORY, FINAL_INTRO
from qwenlong.memagent.run import MemAgentRunConfig, run_memagent
from qwenlong.memagent.trace import TraceStore


def _step(sample_id: str, step: int) -> AgentStep:
    return AgentStep(sample_id, 0, step, 16, 16 * step, f"m{step}", f"p{step}", "ok")


def _result(sample_id: str) -> AgentResult:
    return AgentResult(sample_id, 0, "answer", memory=MemoryState("m", "p"), n_steps=2)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reopening_drops_unfinished_samples_and_a_torn_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    with TraceStore(path) as trace:
        trace.on_step(_step("a", 0))
        trace.on_step(_step("b", 0))
        trace.on_step(_step("a", 1))
        trace.on_result("a", [_result("a")])
        trace.on_step(_step("b", 1))
    with path.open("a") as handle:
        handle.write('{"kind": "step", "sample_id": "b", "st')  # killed mid-write
    trace = TraceStore(path)
    assert "a" in trace and "b" not in trace and len(trace) == 1
    assert [(r["kind"], r.get("sample_id", r.get("id"))) for r in _lines(path)] == [
        ("step", "a"),
        ("step", "a"),
        ("result", "a"),
    ]
    assert trace.result("a")["outputs"][0]["memory"] == {"memory": "m", "plan": "p"}
    trace.on_step(_step("b", 0))
    assert [s["step"] for s in trace.iter_steps("b")] == [0]
    assert [s["memory"] for s in trace.iter_steps("a")] == ["m0", "m1"]
    trace.close()


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "trace.jsonl"
    record = {"kind": "result", "id": "z", "outputs": []}
    path.write_text(json.dumps(record))
    with TraceStore(path) as trace:
        assert "z" in trace
    assert path.read_text().endswith("\n")


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text('{"kind": "result", "id": "a", "outputs": []}\nnot json\n{"kind": "x"}\n')
    with pytest.raises(DatasetError, match=r"trace.jsonl:2: corrupt trace line"):
        TraceStore(path)


class NoteModel:
    """Appends each section to the memory; answers with the first word of the memory. Raises
    BackendUnavailable once `fail_on` (a question) shows up, to simulate an outage."""

    name = "notes"

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.problems: list[str] = []
        self.calls = 0

    def generate(self, conversations, sampling):
        self.calls += 1
        replies = []
        for conversation in conversations:
            prompt = conversation[-1]["content"]
            problem = prompt.split("<problem>\n", 1)[1].split("\n</problem>", 1)[0]
            if problem == self.fail_on:
                raise BackendUnavailable("http://127.0.0.1:9/v1: connection refused")
            self.problems.append(problem)
            if prompt.startswith(FINAL_INTRO):
                memory = prompt.split("<memory>\n", 1)[1].split()[0]
                replies.append([Completion(f"Therefore, the answer is {memory}")])
            else:
                previous = prompt.split("<previous_memory>\n", 1)[1].split("\n</prev", 1)[0]
                previous = "" if previous == EMPTY_MEMORY else previous
                section = prompt.split('">\n', 1)[1].split("\n</section>", 1)[0]
                reply = f"<memory>{previous}{section}</memory><plan>go on</plan>"
                replies.append([Completion(reply)] * sampling.n)
        return replies

    def close(self) -> None:
        pass


def _samples() -> list[TaskSample]:
    return [
        TaskSample(
            id=f"s{i}",
            task_type="reading",
            question=f"What is the first word of document {i}?",
            answers=[f"w{i}"],
            context=f"w{i} " + "and some more words follow here. " * (i + 1),
        )
        for i in range(5)
    ]


def _config(tmp_path: Path, tiny_model_dir: Path) -> MemAgentRunConfig:
    data = tmp_path / "data.parquet"
    write_samples(_samples(), data)
    return MemAgentRunConfig(
        model=BackendConfig(model=str(tiny_model_dir)),
        tokenizer=str(tiny_model_dir),
        memagent={"chunk_tokens": 16, "memory_tokens": 256, "plan_tokens": 16},
        sampling={"max_new_tokens": 32, "seed": 5},
        batch_size=2,
        dataset={"path": data},
    )


def test_an_interrupted_run_resumes_by_sample_id(tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir)
    out = tmp_path / "run"
    with pytest.raises(BackendUnavailable):
        run_memagent(config, out, model=NoteModel(fail_on="What is the first word of document 3?"))
    trace = TraceStore(out / "trace.jsonl")
    assert [sid for sid in ("s0", "s1", "s2", "s3", "s4") if sid in trace] == ["s0", "s1"]
    trace.close()

    model = NoteModel()
    summary = run_memagent(config, out, model=model)
    asked = set(model.problems)
    assert asked == {f"What is the first word of document {i}?" for i in (2, 3, 4)}
    assert (summary["samples"], summary["answered_now"], summary["resumed"]) == (5, 3, 2)
    predictions = _lines(out / "predictions.jsonl")
    assert [p["id"] for p in predictions] == ["s0", "s1", "s2", "s3", "s4"]
    assert [p["outputs"] for p in predictions] == [
        [f"Therefore, the answer is w{i}"] for i in range(5)
    ]
    assert summary["rule_score"] == 1.0 and summary["scored"] == 5
    # every sample's steps are in the trace exactly once: the interrupted batch left nothing
    steps = [r for r in _lines(out / "trace.jsonl") if r["kind"] == "step"]
    per_sample = {sid: [s["step"] for s in steps if s["sample_id"] == sid] for sid in ("s2", "s3")}
    assert all(v == list(range(len(v))) and v for v in per_sample.values())
    assert summary["n_steps"] == len(steps)

    again = NoteModel()
    assert run_memagent(config, out, model=again)["answered_now"] == 0
    assert again.calls == 0
