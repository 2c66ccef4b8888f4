"""Pass@k pre-inference before a stage: the retrospective step measured where it matters.

RECIPE.md section 2: between stages the data is filtered by difficulty *under the next stage's
lengths*. Pass rates tallied from the previous stage's own rollouts were measured at its shorter
output limit, so a question failed only because its answer did not fit would be dropped as
"never solved", exactly the kind the longer stage exists to unlock. Here the policy about to
train the stage (after any `from_checkpoint` load) answers every candidate k times with the
stage's own input and output limits, at the rollout temperature, and the rule-then-judge reward
decides each answer, as in training.

The work is batched (`prompts_per_call` prompts per engine call) and resumable: every batch's
tallies are appended to `stages/NAME/pre_inference.jsonl` as soon as they are known, and a
rerun measures only the samples not in it yet (a torn last line from a kill is cut off). Every
answer's seed is fixed by (run seed, stage, sample), so a resumed measurement equals an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from qwenlong.core.errors import DatasetError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import TaskSample
from qwenlong.core.rundir import repair_torn_tail
from qwenlong.rl.interfaces import RewardCall, Rollout


def read_measured(path: Path) -> dict[str, tuple[int, int]]:
    """{sample id: (passed, attempts)} of a pre-inference file; {} when there is none."""
    if not path.exists():
        return {}
    repair_torn_tail(path)
    measured: dict[str, tuple[int, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            measured[str(record["id"])] = (int(record["passed"]), int(record["attempts"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise DatasetError(
                f"{path} line {number}: expected a JSON object with 'id', 'passed', 'attempts'"
            ) from None
    return measured


def pre_inference_rates(
    samples: Sequence[TaskSample],
    rollout: Rollout,
    reward: RewardCall,
    sampling: SamplingParams,
    max_input_tokens: int,
    path: Path,
    prompts_per_call: int,
) -> dict[str, float]:
    """Pass rates (correct answers / `sampling.n`) of every distinct sample, measured by
    `rollout` and `reward` and recorded in `path` batch by batch; those already in `path` are
    read back, not measured again."""
    measured = read_measured(path)
    distinct = list({sample.id: sample for sample in samples}.values())
    todo = [sample for sample in distinct if sample.id not in measured]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for start in range(0, len(todo), prompts_per_call):
            chunk = todo[start : start + prompts_per_call]
            batch = rollout.generate(chunk, sampling, max_input_tokens)
            scored = reward(batch.samples, batch.outputs)
            passed: Counter[str] = Counter()
            attempts: Counter[str] = Counter()
            for sample, correct in zip(batch.samples, scored.correct.tolist(), strict=True):
                attempts[sample.id] += 1
                passed[sample.id] += bool(correct)
            for sample in chunk:
                record = {"id": sample.id, "passed": passed[sample.id]}
                record["attempts"] = attempts[sample.id]
                measured[sample.id] = (record["passed"], record["attempts"])
                handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    return {key: passed / attempts for key, (passed, attempts) in measured.items() if attempts}
