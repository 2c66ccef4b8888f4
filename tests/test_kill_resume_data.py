"""Every long job, SIGKILLed part-way and rerun into the same folder, ends with the files an
uninterrupted run writes: `qwenlong synth`, `eval` and `memagent` (train and merge: test_kill_resume_training.py).

Each test runs the job uninterrupted into `straight` in this process through the CLI entry
point; runs it as a subprocess into `resumed` and SIGKILLs it part-way, once a file shows it got
there or, for a moment no polling can catch (a file half-written), by its own hand; reruns it
there to completion; and compares the two folders file by file: the same relative paths
(dotfiles included, so a lock or a temp file left behind fails) and the same bytes. A file that
may legitimately differ is named in the test with the reason, and is compared with only the
differing part removed (timings, "(resumed)" notes, the folder's own path); a file is left
uncompared only when nothing else is in it (a plot of timings, a saved RNG state).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kill_harness import (
    Differs,
    assert_same_files,
    jsonl_without,
    lines_with,
    run_killed,
    run_straight,
)

from qwenlong.core.dataset_io import write_samples
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import read_metrics


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENLONG_PROGRESS", "0")


def test_folder_comparison_names_what_differs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, seconds in ((a, 0.5), (b, 0.7)):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "same.txt").write_text("x")
        (folder / "metrics.jsonl").write_text(json.dumps({"step": 1, "time_x": seconds}) + "\n")
    timing = {"metrics.jsonl": Differs("timings", jsonl_without("time_*"))}
    assert_same_files(a, b, timing)
    with pytest.raises(AssertionError, match=r"metrics\.jsonl differs"):
        assert_same_files(a, b)
    with pytest.raises(AssertionError, match=r"match no file: \['plots/x\.png'\]"):
        assert_same_files(a, b, {**timing, "plots/x.png": Differs("timing plot", None)})
    (b / ".sub.partial").write_text("half")
    with pytest.raises(AssertionError, match=r"only in the resumed run: \['\.sub\.partial'\]"):
        assert_same_files(a, b, timing)
    (b / ".sub.partial").unlink()
    (b / "sub" / "same.txt").write_text("y")
    with pytest.raises(AssertionError, match=r"sub/same\.txt differs"):
        assert_same_files(a, b, timing)


# --------------------------------------------------------------------------- synth


RESUMED_NOTE = re.compile(rb" \((?:\d+ documents )?resumed\)")


@pytest.mark.slow
def test_killed_synth_resumes_to_the_same_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "synth.yaml"
    # tests/test_synth_e2e.py's config, plus verification's grounding check by the tiny model
    # (it answers nothing without documents, so every sample is kept, with its pass rate).
    config.write_text(
        f"seed: 3\ntokenizer: {tiny_model_dir}\n"
        "corpus: {world: {seed: 3, n_people: 16, n_organisations: 6, n_dialogues: 2}}\n"
        "generators:\n"
        "  corpus_numerical: {num_samples: 12}\n"
        "  dialogue_needles: {target_tokens: [2048], samples_per_target: 2}\n"
        "assembly: {target_lengths: [2048, 3072]}\n"
        f"solver: {{backend: hf, model: {tiny_model_dir}, hf: {{torch_threads: 1}}}}\n"
        "verify: {checks: [grounding], k: 2, max_new_tokens: 8, chunk_size: 4}\n"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_straight("synth", config, "--out", straight)

    args: list[str | Path] = ["synth", config, "--out", resumed]
    # Killed while the generators run: corpus and triples are on disk, the dataset is not.
    part_way = (resumed / "candidates" / "kg_multihop.json").exists
    run_killed(args, part_way, tmp_path / "killed-generate.log")
    assert not (resumed / "verify").exists()
    # Killed while verification asks the model: two of its six chunks are stored.
    grounding = resumed / "verify" / "grounding.jsonl"
    part_way = lambda: lines_with(grounding, "\n") >= 8  # noqa: E731
    run_killed(args, part_way, tmp_path / "killed-verify.log")
    assert not (resumed / "dataset").exists()
    run_straight(*args)

    resumed_notes = Differs(
        'the stage modes say which stages were read back: "(resumed)", "(45 documents resumed)"',
        lambda data: RESUMED_NOTE.sub(b"", data),
    )
    assert RESUMED_NOTE.search((resumed / "report.md").read_bytes())
    assert_same_files(
        straight, resumed, {"report.md": resumed_notes, "summary.json": resumed_notes}
    )


# --------------------------------------------------------------------------- eval


@pytest.mark.slow
def test_killed_eval_resumes_to_the_same_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    from qwenlong.evals.benchmarks.examples import write_examples

    paths = write_examples(tmp_path / "bench", seed=3, n=6)
    benches = "".join(
        f"  - {{name: {name}, path: {paths[name]}}}\n"
        for name in ("longbench_v2", "mrcr", "longbench_v1_qa")
    )
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"model: {{backend: hf, model: {tiny_model_dir}, hf: {{torch_threads: 1}}}}\n"
        "sampling: {max_input_tokens: 2048, max_new_tokens: 24, temperature: 0.7, seed: 11}\n"
        "samples_per_question: 2\nchunk_size: 2\nbootstrap_resamples: 100\n"
        f"benchmarks:\n{benches}"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_straight("eval", config, "--out", straight)

    # Killed after two chunks of the first benchmark: 4 of its 6 questions answered.
    first = resumed / "predictions" / "longbench_v2.jsonl"
    part_way = lambda: lines_with(first, "\n") >= 4  # noqa: E731
    run_killed(["eval", config, "--out", resumed], part_way, tmp_path / "killed.log")
    assert not (resumed / "scores.json").exists()
    run_straight("eval", config, "--out", resumed)

    assert_same_files(
        straight,
        resumed,
        {
            "metrics.jsonl": Differs(
                "`generated` counts the questions this run answered (2, not 6, for the first "
                "benchmark after the kill)",
                jsonl_without("generated"),
            )
        },
    )


# --------------------------------------------------------------------------- memagent


def _memagent_samples() -> list[TaskSample]:
    """Six samples in batches of two; documents of 20 to 70 sentences, two to six chunks."""
    return [
        TaskSample(
            id=f"s{i}",
            task_type="reading",
            question=f"What is the code of item {i}?",
            answers=[f"k{i}"],
            context=" ".join(f"Item {j} has code k{j}." for j in range(i, i + 20 + 10 * i)),
        )
        for i in range(6)
    ]


@pytest.mark.slow
def test_killed_memagent_resumes_to_the_same_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_samples(_memagent_samples(), tmp_path / "data.parquet")
    config = tmp_path / "memagent.yaml"
    config.write_text(
        f"model: {{backend: hf, model: {tiny_model_dir}, hf: {{torch_threads: 1}}}}\n"
        "memagent: {chunk_tokens: 64, memory_tokens: 64, plan_tokens: 16,\n"
        "           step: {max_new_tokens: 24}, final_max_tokens: 16}\n"
        "sampling: {temperature: 0.7, seed: 5}\n"
        f"dataset: {{path: {data}}}\n"
        "batch_size: 2\n"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_straight("memagent", config, "--out", straight)

    # Killed while the second batch reads: s3 has written steps, the batch has no results (a
    # batch's results are written together, after its final-answer call).
    trace = resumed / "trace.jsonl"
    part_way = lambda: lines_with(trace, '"sample_id": "s3"') > 0  # noqa: E731
    run_killed(["memagent", config, "--out", resumed], part_way, tmp_path / "killed.log")
    assert lines_with(trace, '"kind": "result"') == 2
    assert [r["step"] for r in read_metrics(resumed)] == [0]
    run_straight("memagent", config, "--out", resumed)

    assert_same_files(
        straight,
        resumed,
        {
            "metrics.jsonl": Differs(
                "each batch's seconds and throughput",
                jsonl_without("seconds", "document_tokens_per_s"),
            )
        },
    )
