"""Every long job, SIGKILLed part-way and rerun into the same folder, ends with the files an
uninterrupted run writes: `qwenlong synth`, `eval`, `memagent`, `train` and `merge`.

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

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qwenlong.app.cli import main
from qwenlong.core.dataset_io import write_samples
from qwenlong.core.errors import DatasetError
from qwenlong.core.records import TaskSample
from qwenlong.core.run_lock import LOCK_NAME
from qwenlong.core.rundir import read_metrics

KILL_DEADLINE_S = 240.0
"""How long a killed run may take to get part-way (the slowest, train, needs about 10 s)."""


# --------------------------------------------------------------------------- comparing folders


@dataclass(frozen=True)
class Differs:
    """Why a file of a resumed run may differ from the uninterrupted run's, and what is compared
    instead of its bytes: `compare(data)` of both files, or nothing when `compare` is None."""

    reason: str
    compare: Callable[[bytes], object] | None


def assert_same_files(
    straight: Path, resumed: Path, differs: Mapping[str, Differs] | None = None
) -> None:
    """`straight` and `resumed` hold the same relative paths with the same bytes, except the
    files matching a pattern (fnmatch, relative path) of `differs`, compared its way instead.

    Every pattern must match a file, so the list of exceptions cannot outlive the difference it
    names; neither folder may be empty or hold a run lock.
    """
    differs = differs or {}
    a, b = _files(straight), _files(resumed)
    assert a, f"{straight} holds no files"
    missing, extra = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    assert not missing and not extra, (
        f"only in the uninterrupted run: {missing}; only in the resumed run: {extra}"
    )
    assert LOCK_NAME not in a, f"{straight}/{LOCK_NAME} left behind by a finished run"
    unmatched = [p for p in differs if not fnmatch.filter(a, p)]
    assert not unmatched, f"patterns of files said to differ match no file: {unmatched}"
    for name in sorted(a):
        rule = next((d for p, d in differs.items() if fnmatch.fnmatchcase(name, p)), None)
        if rule is None:
            assert a[name] == b[name], f"{name} differs between the uninterrupted and resumed runs"
        elif rule.compare is not None:
            assert rule.compare(a[name]) == rule.compare(b[name]), f"{name} ({rule.reason})"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def jsonl_without(*keys: str, replace: Mapping[str, str] | None = None) -> Callable[[bytes], Any]:
    """The records of a JSONL (or JSON) file with `keys` dropped at any depth (a key ending in
    "*" drops every key with that prefix), after replacing each text `replace` names."""

    def compare(data: bytes) -> Any:
        text = text_replacing(replace or {})(data)
        return [_drop(json.loads(line), keys) for line in text.splitlines() if line.strip()]

    return compare


def text_replacing(replace: Mapping[str, str]) -> Callable[[bytes], str]:
    """The file's text with each text `replace` names replaced (a folder's own path)."""

    def compare(data: bytes) -> str:
        text = data.decode()
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    return compare


def json_without(*keys: str, replace: Mapping[str, str] | None = None) -> Callable[[bytes], Any]:
    """`jsonl_without` for a file holding one (indented) JSON value."""
    one = jsonl_without(*keys, replace=replace)
    return lambda data: one(json.dumps(json.loads(data)).encode())


def _drop(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if not _matches(k, keys)}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


def _matches(key: str, keys: tuple[str, ...]) -> bool:
    return any(key.startswith(k[:-1]) if k.endswith("*") else key == k for k in keys)


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


# --------------------------------------------------------------------------- running and killing


def _env() -> dict[str, str]:
    return {**os.environ, "QWENLONG_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def run_straight(*args: str | Path) -> None:
    """`qwenlong ARGS` to completion in this process (no interpreter start, no model reload)."""
    main([str(a) for a in args])


def run_killed(
    args: list[str | Path], part_way: Callable[[], bool] | None, log: Path, prelude: str = ""
) -> None:
    """`qwenlong ARGS` in a subprocess, SIGKILLed as soon as `part_way()` holds (polled every
    10 ms). `prelude` is Python run before the CLI in that process; with `part_way` None it is
    the prelude that makes the process SIGKILL itself, at a moment polling cannot catch."""
    code = f"{prelude}\nimport sys\nfrom qwenlong.app.cli import main\nmain(sys.argv[1:])"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline, gave_up = time.monotonic() + KILL_DEADLINE_S, False
        while proc.poll() is None:
            if part_way is not None and part_way():
                proc.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                proc.kill()
                gave_up = True
                break
            time.sleep(0.01)
        code_at_end = proc.wait()
    tail = log.read_text()[-3000:]
    assert not gave_up, f"the run got nowhere in {KILL_DEADLINE_S:.0f} s:\n{tail}"
    assert code_at_end == -signal.SIGKILL, (
        f"the run ended (exit {code_at_end}) without being killed part-way:\n{tail}"
    )


def die_on_truncating(name: str) -> str:
    """A prelude for `run_killed`: the process SIGKILLs itself as soon as it has opened for
    writing (so truncated) a file whose name starts with `name` (`name.partial` included), as a
    kill in the middle of that write would leave it."""
    return f"""
import os, pathlib, signal
open_path = pathlib.Path.open
def open_then_die(self, mode="r", *args, **kwargs):
    handle = open_path(self, mode, *args, **kwargs)
    if "w" in mode and self.name.startswith({name!r}):
        os.kill(os.getpid(), signal.SIGKILL)
    return handle
pathlib.Path.open = open_then_die
"""


def _lines_with(path: Path, text: str) -> int:
    return path.read_text().count(text) if path.exists() else 0


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENLONG_PROGRESS", "0")


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
    part_way = lambda: _lines_with(grounding, "\n") >= 8  # noqa: E731
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
    part_way = lambda: _lines_with(first, "\n") >= 4  # noqa: E731
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
    part_way = lambda: _lines_with(trace, '"sample_id": "s3"') > 0  # noqa: E731
    run_killed(["memagent", config, "--out", resumed], part_way, tmp_path / "killed.log")
    assert _lines_with(trace, '"kind": "result"') == 2
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
