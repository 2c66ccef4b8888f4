"""A run that watches itself: collapse detection over the logged step signals, and what to do.

Two ways the CPU demo and its ablations died quietly, each visible in metrics.jsonl only to a
reader who looked:

- answers sliding into endless lists: entropy near 0, every reward 0, no group with any reward
  variance left (so no gradient), never recovering;
- answers that stop ending: the answer line repeated up to the output limit, still paid because
  the rule reads after the last "answer is"; most responses truncated.

Each symptom is a named check (`SYMPTOMS`) of one step's record; a symptom present for
`patience` consecutive steps trips the detector (a non-finite loss or gradient norm trips at
once). A collapse is a healthy run turning sick, so a symptom counts only after a step without
it: a run that never had a reward signal (a random model) is not stopped for lacking one. The defaults catch both failures within their first few steps and none of the healthy
runs of the README (tested against those runs' metrics). On a trip the run either stops, or
rolls back to the newest checkpoint written before the symptom began and continues with the
configured changes (learning rate x `lr_scale`, AEPO on); every trip is a record in
metrics.jsonl, a line in RUN/collapse.jsonl and an entry of the summary, never silent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from qwenlong.core.config import ConfigModel
from qwenlong.core.registry import Registry


class CollapseConfig(ConfigModel):
    """Collapse detection (ours: the paper reports no such mechanism)."""

    enabled: bool = True
    """Watch every step. Off: nothing is checked."""
    patience: int = Field(default=3, ge=1)
    """Consecutive steps a symptom must last to trip (a non-finite loss trips at once): a
    healthy run has single bad batches; the demo's collapses never recovered. Ours."""
    max_flat_groups: float = Field(default=0.95, ge=0, le=1)
    """`no_signal`: the share of groups without reward variance at or above this ... Healthy
    README runs: at most 0.75."""
    max_reward: float = Field(default=0.02, ge=0)
    """... while the mean reward is at or below this. Healthy README runs: at least 0.117."""
    min_entropy: float = Field(default=0.02, ge=0)
    """`entropy_collapse`: the batch entropy (nats) below this. Healthy README runs: at least
    0.111; a collapse into one repeated answer sits near 0."""
    max_truncated: float = Field(default=0.5, ge=0, le=1)
    """`runaway_length`: the share of responses cut by the output limit at or above this.
    Healthy README runs: at most 0.125."""
    action: Literal["rollback", "stop"] = "rollback"
    """On a trip: "rollback" to the newest checkpoint before the symptom began and continue
    with the changes below, or "stop" the run (the summary says why)."""
    max_rollbacks: int = Field(default=2, ge=0)
    """Rollbacks before a further trip stops the run."""
    lr_scale: float = Field(default=0.5, gt=0, le=1)
    """Each rollback multiplies the learning rate by this."""
    enable_aepo: bool = True
    """Each rollback turns AEPO on (its thresholds as configured), if it was off."""


Symptom = Callable[[Mapping[str, Any], CollapseConfig], bool]
"""(one step's metrics record, config) -> whether the symptom is present."""

SYMPTOMS: Registry[Symptom] = Registry("collapse symptom")


def _value(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    return None if value is None else float(value)


@SYMPTOMS.register("nonfinite")
def nonfinite(record: Mapping[str, Any], config: CollapseConfig) -> bool:
    """The loss or the gradient norm is NaN or infinite."""
    values = (_value(record, "loss"), _value(record, "grad_norm"))
    return any(value is not None and not math.isfinite(value) for value in values)


@SYMPTOMS.register("no_signal")
def no_signal(record: Mapping[str, Any], config: CollapseConfig) -> bool:
    """(Nearly) every group has equal rewards, and they are (nearly) all 0: no gradient."""
    flat, reward = _value(record, "zero_variance_groups"), _value(record, "reward_mean")
    if flat is None or reward is None:
        return False
    return flat >= config.max_flat_groups and reward <= config.max_reward


@SYMPTOMS.register("entropy_collapse")
def entropy_collapse(record: Mapping[str, Any], config: CollapseConfig) -> bool:
    """The policy has stopped exploring: batch entropy near 0."""
    entropy = _value(record, "entropy")
    return entropy is not None and entropy < config.min_entropy


@SYMPTOMS.register("runaway_length")
def runaway_length(record: Mapping[str, Any], config: CollapseConfig) -> bool:
    """Most answers no longer end: they run into the output limit."""
    truncated = _value(record, "truncated_frac")
    return truncated is not None and truncated >= config.max_truncated


@dataclass(frozen=True)
class Trip:
    """A symptom that lasted long enough."""

    symptom: str
    since: int
    """First step of the run of consecutive steps showing it."""
    step: int
    """The step that tripped."""

    def describe(self) -> str:
        return f"{self.symptom} from step {self.since} to step {self.step}"


class CollapseDetector:
    """Streaks of each symptom over consecutive steps, and the changes rollbacks made."""

    def __init__(self, config: CollapseConfig) -> None:
        self.config = config
        self.since: dict[str, int] = {}
        """symptom -> first step of its current streak."""
        self.healthy: set[str] = set()
        """Symptoms seen absent at least once: only those can start a streak."""
        self.rollbacks = 0
        self.lr_scale = 1.0
        self.aepo_forced = False
        self.trips: list[dict[str, Any]] = []

    def observe(self, step: int, record: Mapping[str, Any]) -> Trip | None:
        """Feed one step's record; the first symptom whose streak reached its patience."""
        if not self.config.enabled:
            return None
        tripped = None
        for name in SYMPTOMS.names():
            if not SYMPTOMS.get(name)(record, self.config):
                self.since.pop(name, None)
                self.healthy.add(name)
                continue
            if name != "nonfinite" and name not in self.healthy:
                continue
            since = self.since.setdefault(name, step)
            patience = 1 if name == "nonfinite" else self.config.patience
            if tripped is None and step - since + 1 >= patience:
                tripped = Trip(name, since, step)
        return tripped

    def can_roll_back(self) -> bool:
        return self.config.action == "rollback" and self.rollbacks < self.config.max_rollbacks

    def record_trip(self, trip: Trip, action: str, to_step: int | None) -> dict[str, Any]:
        """Note a trip and its outcome; after a rollback, the changes it brings."""
        if action == "rollback":
            self.rollbacks += 1
            self.lr_scale *= self.config.lr_scale
            self.aepo_forced = self.aepo_forced or self.config.enable_aepo
            self.since.clear()
        event = {
            **asdict(trip),
            "action": action,
            "to_step": to_step,
            "lr_scale": self.lr_scale,
            "aepo_forced": self.aepo_forced,
        }
        self.trips.append(event)
        return event

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs: streaks, the changes in force, the trips so far."""
        return {
            "since": dict(self.since),
            "healthy": sorted(self.healthy),
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "aepo_forced": self.aepo_forced,
            "trips": list(self.trips),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.since = {name: int(step) for name, step in state["since"].items()}
        self.healthy = set(state["healthy"])
        self.rollbacks = int(state["rollbacks"])
        self.lr_scale = float(state["lr_scale"])
        self.aepo_forced = bool(state["aepo_forced"])
        self.trips = list(state["trips"])
