"""Task-balanced batch sampling (paper Sec. 4.2): an equal share of every task type per batch.

Long-context RL data is lopsided: synthesis yields many more reading questions than dialogue
needles, and a plain shuffle lets the common task dominate every batch and the advantage
statistics with it. The balanced sampler gives each task type 1/#tasks of every batch; when the
batch size does not divide evenly, the leftover slots rotate over the tasks so that over any
#tasks consecutive batches every task receives exactly the same number of prompts.

Each task has its own stream: a shuffled permutation of that task's samples, read in order and
replaced by a fresh permutation when exhausted (so a small task repeats sooner than a large one,
which is the point). The sampler is infinite. Every permutation and every in-batch shuffle is a
pure function of (seed, stream, epoch or batch number), so the whole state is a handful of
counters: `state_dict()` is a small JSON-able dict and a restored sampler yields exactly the
batches the uninterrupted one would have.

`balanced=False` is the plain shuffled sampler of the "GRPO" ablation: one stream over all
samples of the listed tasks.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import TASK_TYPES, TaskSample

STATE_VERSION = 1
"""Version of `state_dict()`'s layout; a different version is refused on load."""

ALL_TASKS = "__all__"
"""Stream name of the unbalanced sampler (one stream over every sample)."""

_ORDER_STREAM = 0x5EED
"""Seed component of the in-batch order shuffle, apart from every stream's crc32 key."""


class SamplerConfig(ConfigModel):
    """Which prompts make up a training batch."""

    batch_size: int = Field(default=128, ge=1)
    """Prompts per batch (each is rolled out G times). Paper: 128."""
    tasks: tuple[str, ...] = TASK_TYPES
    """Task types drawn from (and balanced over). Default: the five of RECIPE.md section 1."""
    balanced: bool = True
    """Equal share per task type (the paper). False samples uniformly over all samples of the
    listed tasks: the plain "GRPO" ablation."""
    missing_tasks: Literal["error", "skip"] = "error"
    """A listed task with no sample in the dataset: "error" stops before any compute (the
    default: a silently missing task changes the experiment), "skip" balances over the tasks
    that are present."""
    unlisted_tasks: Literal["error", "drop"] = "error"
    """Samples whose task is not in `tasks`: "error" (default: likely a config mistake) or
    "drop" them."""

    @model_validator(mode="after")
    def _check(self) -> SamplerConfig:
        if not self.tasks:
            raise ValueError("tasks is empty; list at least one task type")
        repeated = sorted(t for t, n in Counter(self.tasks).items() if n > 1)
        if repeated:
            raise ValueError(f"tasks lists {', '.join(repeated)} more than once")
        if self.balanced and self.missing_tasks == "error" and self.batch_size < len(self.tasks):
            raise ValueError(
                f"batch_size {self.batch_size} is smaller than the {len(self.tasks)} tasks it "
                "balances; every task needs at least one prompt per batch"
            )
        return self


def _stream_key(name: str) -> int:
    """A per-stream seed component that does not depend on the order tasks are listed in."""
    return zlib.crc32(name.encode("utf-8"))


class _Stream:
    """An endless, reshuffled-per-epoch walk over a fixed list of sample indices."""

    def __init__(self, name: str, indices: list[int], seed: int) -> None:
        self.name = name
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed = seed
        self.epoch = 0
        self.cursor = 0
        self._order: np.ndarray | None = None

    def _permutation(self) -> np.ndarray:
        if self._order is None:
            rng = np.random.default_rng([self.seed, _stream_key(self.name), self.epoch])
            self._order = self.indices[rng.permutation(len(self.indices))]
        return self._order

    def take(self, count: int) -> list[int]:
        """The next `count` indices, moving into fresh permutations as epochs run out."""
        taken: list[int] = []
        while len(taken) < count:
            order = self._permutation()
            grab = min(count - len(taken), len(order) - self.cursor)
            taken.extend(order[self.cursor : self.cursor + grab].tolist())
            self.cursor += grab
            if self.cursor == len(order):
                self.epoch, self.cursor, self._order = self.epoch + 1, 0, None
        return taken

    def progress(self) -> float:
        """Passes over this stream's samples so far (2.5 = halfway through the third)."""
        return self.epoch + self.cursor / len(self.indices)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor, "size": len(self.indices)}

    def restore(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor, self._order = int(state["epoch"]), int(state["cursor"]), None


def _counts_text(counts: Counter[str]) -> str:
    return ", ".join(f"{task}={n}" for task, n in sorted(counts.items())) or "none"


def _check_dataset(counts: Counter[str], config: SamplerConfig, source: str) -> list[str]:
    """The listed task types present in the data, or the error that stops the run early."""
    listed = set(config.tasks)
    unlisted = sorted(t for t in counts if t not in listed)
    if unlisted and config.unlisted_tasks == "error":
        raise DatasetError(
            f"{source}: samples of task type(s) {', '.join(unlisted)} are not in "
            f"sampler.tasks (set sampler.unlisted_tasks: drop to ignore them); counts per "
            f"task: {_counts_text(counts)}"
        )
    missing = [t for t in config.tasks if counts[t] == 0]
    if missing and config.balanced and config.missing_tasks == "error":
        raise DatasetError(
            f"{source}: no samples of task type(s) {', '.join(missing)}, which sampler.tasks "
            f"balances; counts per task: {_counts_text(counts)}"
        )
    present = [t for t in config.tasks if counts[t] > 0]
    if not present:
        raise DatasetError(
            f"{source}: no sample has a task type listed in sampler.tasks "
            f"({', '.join(config.tasks)}); counts per task: {_counts_text(counts)}"
        )
    if config.balanced and config.batch_size < len(present):
        raise ConfigError(
            f"sampler.batch_size {config.batch_size} is smaller than the {len(present)} "
            "tasks it balances"
        )
    return present


class TaskBalancedSampler:
    """Infinite batches of `TaskSample`s, balanced over task types, resumable exactly.

    All dataset checks run in the constructor, before any rollout: a listed task without
    samples, samples of an unlisted task, an empty dataset. `source` names the dataset in those
    messages (a file path, usually).
    """

    def __init__(
        self,
        samples: Sequence[TaskSample],
        config: SamplerConfig,
        seed: int,
        source: str = "<samples>",
    ) -> None:
        self.config = config
        self.seed = int(seed)
        self.source = source
        if not samples:
            raise DatasetError(f"{source}: the training dataset is empty")
        present = _check_dataset(Counter(s.task_type for s in samples), config, source)
        self.samples = list(samples)
        self.tasks = present
        """The task types drawn from: the listed ones present in the data, in config order."""
        by_task: dict[str, list[int]] = {t: [] for t in present}
        for i, sample in enumerate(self.samples):
            if sample.task_type in by_task:
                by_task[sample.task_type].append(i)
        groups = (
            by_task if config.balanced else {ALL_TASKS: [i for v in by_task.values() for i in v]}
        )
        self._streams = [_Stream(name, sorted(idx), self.seed) for name, idx in groups.items()]
        self.batches_drawn = 0
        self._dataset_fingerprint = _fingerprint(self.samples, by_task)

    def shares(self, batch_number: int) -> dict[str, int]:
        """Prompts per stream in batch `batch_number` (0-based): the base share, plus one for
        the tasks the rotating remainder falls on."""
        size, count = self.config.batch_size, len(self._streams)
        base, extra = divmod(size, count)
        start = (batch_number * extra) % count
        lucky = {(start + j) % count for j in range(extra)}
        return {s.name: base + (i in lucky) for i, s in enumerate(self._streams)}

    def next_batch(self) -> list[TaskSample]:
        """The next `batch_size` samples, tasks interleaved in a shuffled order."""
        shares = self.shares(self.batches_drawn)
        picked: list[int] = []
        for stream in self._streams:
            picked.extend(stream.take(shares[stream.name]))
        if len(self._streams) > 1:
            rng = np.random.default_rng([self.seed, _ORDER_STREAM, self.batches_drawn])
            picked = [picked[i] for i in rng.permutation(len(picked))]
        self.batches_drawn += 1
        return [self.samples[i] for i in picked]

    def epochs(self) -> dict[str, float]:
        """Passes made over each stream's samples so far, for logging."""
        return {s.name: s.progress() for s in self._streams}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position of the sampler: counters only (permutations are re-derived)."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "batch_size": self.config.batch_size,
            "balanced": self.config.balanced,
            "streams": {s.name: s.state() for s in self._streams},
            "dataset": self._dataset_fingerprint,
            "batches_drawn": self.batches_drawn,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`; refuses a state from another seed, batch setup or dataset."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"sampler state has version {state.get('version')!r}; this code reads "
                f"{STATE_VERSION}"
            )
        for key, now in (
            ("seed", self.seed),
            ("batch_size", self.config.batch_size),
            ("balanced", self.config.balanced),
        ):
            if state[key] != now:
                raise ConfigError(f"sampler state: {key} was {state[key]!r}, now {now!r}")
        saved = set(state["streams"])
        have = {s.name for s in self._streams}
        if saved != have:
            raise ConfigError(
                f"sampler state streams {', '.join(sorted(saved))} differ from this sampler's "
                f"{', '.join(sorted(have))}"
            )
        if state["dataset"] != self._dataset_fingerprint:
            sizes = ", ".join(f"{k}={v['size']}" for k, v in sorted(state["streams"].items()))
            raise DatasetError(
                f"{self.source}: sampler state was saved for a different dataset (its samples "
                f"per stream: {sizes}); resume with the same data, in the same order"
            )
        for stream in self._streams:
            stream.restore(state["streams"][stream.name])
        self.batches_drawn = int(state["batches_drawn"])


def _fingerprint(samples: list[TaskSample], by_task: dict[str, list[int]]) -> str:
    """Hash of the sampled ids per task, in dataset order: what the permutations index into."""
    digest = hashlib.sha256()
    for task, indices in by_task.items():
        digest.update(f"\x00{task}\x00".encode())
        for i in indices:
            digest.update(samples[i].id.encode("utf-8") + b"\n")
    return digest.hexdigest()
