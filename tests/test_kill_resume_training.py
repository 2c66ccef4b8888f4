"""`qwenlong train` and `qwenlong merge`, SIGKILLed part-way and rerun into the same folder, end
with the files an uninterrupted run writes (the harness: tests/kill_harness.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kill_harness import (
    Differs,
    assert_same_files,
    die_on_truncating,
    json_without,
    jsonl_without,
    run_killed,
    run_straight,
    text_replacing,
)

from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import read_metrics


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENLONG_PROGRESS", "0")


# --------------------------------------------------------------------------- train


def _train_samples() -> list[TaskSample]:
    samples = []
    for i in range(8):
        samples += [
            TaskSample(
                id=f"read-{i}",
                task_type="reading",
                question=f"What is the code of item {i}?",
                answers=[f"k{i}"],
                context=f"Item {i} has code k{i}.",
            ),
            TaskSample(
                id=f"dlg-{i}",
                task_type="dialogue_memory",
                question=f"Repeat the line about item {i}.",
                answers=[f"item {i} is here"],
                answer_kind="sequence",
                context=f"line: item {i} is here",
                meta={"prefix": ""},
            ),
        ]
    return samples


TIMINGS = ("time_*", "tokens_per_s", "train_tokens_per_s")
"""Wall-clock fields of a training step's record (qwenlong.rl.metrics.timing_metrics)."""


@pytest.mark.slow
def test_killed_train_resumes_to_the_same_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_samples(_train_samples(), tmp_path / "data.parquet")
    config = tmp_path / "train.yaml"
    # experiments/rl-tiny-cpu.yaml in miniature, without Ray and without the SFT control
    # (whose step count is whatever fits in RL's wall time).
    config.write_text(
        f"model: {tiny_model_dir}\n"
        f"data: {{train: [{data}], heldout_fraction: 0.25}}\n"
        "seed: 3\nsteps: 6\n"
        "sampler: {batch_size: 4, tasks: [reading, dialogue_memory]}\n"
        "rollout: {group_size: 2, max_new_tokens: 6, max_input_tokens: 400, "
        "hf: {torch_threads: 1}}\n"
        "policy: {torch: {lr: 1.0e-3, torch_threads: 1}}\n"
        "aepo: {entropy_high: 50.0, entropy_low: 40.0}\n"
        "sft: {steps: 2, batch_size: 4, log_every: 1}\n"
        "heldout: {size: 4, every: 2}\n"
        "checkpoint_every: 2\n"
        "ray: {enabled: false}\n"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_straight("train", config, "--out", straight)

    args: list[str | Path] = ["train", config, "--out", resumed]
    # Killed while the first stage records which samples it trains on (after the warm start).
    run_killed(args, None, tmp_path / "killed-ids.log", die_on_truncating("train_ids.json"))
    # Killed once step 3 is logged: its records follow the step-2 checkpoint the rerun resumes
    # from (or, if the kill came a little later, the step-4 one), and the run is not finished.
    part_way = lambda: any(r["step"] == 3 for r in _metrics(resumed))  # noqa: E731
    run_killed(args, part_way, tmp_path / "killed-step.log")
    assert (resumed / "checkpoints" / "step_000002" / "state.json").is_file()
    assert not (resumed / "summary.json").exists() and not (resumed / "model").exists()
    # Killed while resuming, as it drops the records logged after that checkpoint.
    run_killed(args, None, tmp_path / "killed-trim.log", die_on_truncating("metrics.jsonl"))
    # Killed after the last step, while it writes the stage's pass rates.
    run_killed(args, None, tmp_path / "killed-rates.log", die_on_truncating("pass_rates.jsonl"))
    assert (resumed / "checkpoints" / "step_000006" / "state.json").is_file()
    run_straight(*args)

    paths = {str(straight): "RUN", str(resumed): "RUN"}
    assert_same_files(
        straight,
        resumed,
        {
            "metrics.jsonl": Differs("each step's wall-clock times", jsonl_without(*TIMINGS)),
            "summary.json": Differs(
                "the final step's times, RL's and SFT's seconds, and the run folder's path",
                json_without(*TIMINGS, "rl_seconds", "seconds", replace=paths),
            ),
            "sft/metrics.jsonl": Differs(
                "each SFT step's elapsed time", jsonl_without("elapsed_s", "tokens_per_s")
            ),
            "sft/result.json": Differs("SFT's seconds", json_without("seconds")),
            "plots/throughput.png": Differs("a plot of tokens per second only", None),
            "plots/time_split.png": Differs("a plot of each phase's seconds only", None),
            "checkpoints/step_*/rng.*": Differs(
                "the global python, numpy and torch RNG states, which the OS seeds at process "
                "start and no step draws from (every draw is keyed by derive_seed): the resumed "
                "run carries the killed process's, restored from its checkpoint",
                None,
            ),
        },
    )


def _metrics(run: Path) -> list[dict[str, Any]]:
    try:
        return read_metrics(run)
    except DatasetError:  # not written yet
        return []


# --------------------------------------------------------------------------- merge


SLOW_MERGE = """
import time
import qwenlong.rl.merge.stream as stream
sce = stream.sce_merge_deltas
def slowed(*args, **kwargs):
    time.sleep(0.05)
    return sce(*args, **kwargs)
stream.sce_merge_deltas = slowed
"""
"""Run before a killed merge: 50 ms per tensor (69 tensors), so the kill surely lands while
shards are being written; sleeping changes nothing the merge computes or writes."""

DIE_WHILE_DELETING_A_MODEL = """
import os, shutil, signal
from pathlib import Path
rmtree = shutil.rmtree
def rmtree_then_die(path, *args, **kwargs):
    shards = sorted(Path(path).glob("*.safetensors"))
    if shards and not Path(path).name.endswith(".partial"):
        shards[0].unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    rmtree(path, *args, **kwargs)
shutil.rmtree = rmtree_then_die
"""
"""Run before a merge that replaces an earlier output: SIGKILLs the process once the first
file of a finished model folder is deleted, as a kill during that deletion would."""


@pytest.fixture
def merge_inputs(tiny_model_dir: Path, tmp_path: Path) -> list[Path]:
    """Two fine-tunes of the tiny model: its weights plus seeded noise, its other files as is."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(tiny_model_dir / "model.safetensors")
    models = []
    for seed in (1, 2):
        folder = tmp_path / "inputs" / f"model{seed}"
        shutil.copytree(tiny_model_dir, folder)
        noise = torch.Generator().manual_seed(seed)
        tuned = {
            name: tensor + 0.01 * torch.randn(tensor.shape, generator=noise)
            for name, tensor in weights.items()
        }
        save_file(tuned, folder / "model.safetensors", metadata={"format": "pt"})
        models.append(folder)
    return models


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """This process's torch on one thread while the test runs, as in the killed subprocesses
    (OMP_NUM_THREADS=1). The merge's float sums (SCE's per-matrix mean squares) are split
    across threads, so the last bits of a merged tensor depend on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_killed_merge_leaves_no_half_model_and_reruns_to_the_same_files(
    tiny_model_dir: Path, merge_inputs: list[Path], tmp_path: Path
) -> None:
    config = tmp_path / "merge.yaml"
    config.write_text(
        f"base: {tiny_model_dir}\nmodels: [{merge_inputs[0]}, {merge_inputs[1]}]\n"
        "output: unused\noverwrite: true\ntop_k: 0.5\nmax_shard_size: 500KB\n"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_straight("merge", config, "--set", f"output={straight / 'merged'}")
    paths = {str(straight): "DIR", str(resumed): "DIR"}
    differs = {
        "merged/merge_config.yaml": Differs("the output's path", text_replacing(paths)),
        "merged/merge_summary.json": Differs(
            "the output's path and the merge's seconds", json_without("seconds", replace=paths)
        ),
    }

    # Killed while it writes shards: no folder at the output path, whole or half.
    output = resumed / "merged"
    staging = resumed / ".merged.partial"  # where qwenlong.rl.merge.stream builds the output
    part_way = lambda: len(list(staging.glob("*.safetensors"))) >= 3  # noqa: E731
    args: list[str | Path] = ["merge", config, "--set", f"output={output}"]
    run_killed(args, part_way, tmp_path / "killed.log", prelude=SLOW_MERGE)
    assert not output.exists() and staging.is_dir()
    run_straight(*args)
    assert_same_files(straight, resumed, differs)

    # Killed while a rerun (overwrite: true) replaces that finished output: the output path
    # holds a whole model (the earlier one or the new one, here the same), never one half gone.
    run_killed(args, None, tmp_path / "killed-replacing.log", prelude=DIE_WHILE_DELETING_A_MODEL)
    merged_only = {name[len("merged/") :]: rule for name, rule in differs.items()}
    assert_same_files(straight / "merged", output, merged_only)
    run_straight(*args)  # and the next run leaves nothing of the killed one behind
    assert_same_files(straight, resumed, differs)
