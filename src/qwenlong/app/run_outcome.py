"""Whether a finished run did all its work; `RunIncomplete` (exit 3) with the count when not.

A run that loses its server keeps going (items stay pending, to be resumed), and a run over an
empty input has nothing to do; both used to end with exit 0, so a script could not tell them
from a complete run. These checks run after the outputs are written and printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwenlong.app.exit_codes import RunIncomplete

if TYPE_CHECKING:
    from qwenlong.memagent.run import MemAgentRunConfig


def check_read_something(count: int, noun: str, source: str | Path) -> None:
    """Nothing read from `source` is an incomplete run: the input is empty, not processed."""
    if count == 0:
        raise RunIncomplete(f"read 0 {noun} from {source}")


def check_eval_complete(scores: Mapping[str, Any], source: str | Path) -> None:
    """Every question of every benchmark in a scores.json payload has been scored.

    `n_pending` counts questions left unanswered by a server outage or unjudged by a judge
    outage; rerunning the same command resumes them.
    """
    benchmarks: Mapping[str, Mapping[str, Any]] = scores["benchmarks"]
    pending = {key: int(entry["n_pending"]) for key, entry in benchmarks.items()}
    total = sum(int(entry["n"]) for entry in benchmarks.values()) + sum(pending.values())
    check_read_something(total, "questions", source)
    if sum(pending.values()):
        where = ", ".join(f"{key} {count}" for key, count in pending.items() if count)
        raise RunIncomplete(
            f"{sum(pending.values())} of {total} questions pending ({where}); "
            "rerun the same command to resume them"
        )


def check_memagent_complete(
    summary: Mapping[str, Any], predictions: Path, config: MemAgentRunConfig
) -> None:
    """Every sample read has a prediction; samples without one were skipped."""
    samples = int(summary["samples"])
    check_read_something(samples, "samples", _memagent_input(config))
    with predictions.open(encoding="utf-8") as handle:
        answered = sum(1 for line in handle if line.strip())
    if answered < samples:
        raise RunIncomplete(
            f"{samples - answered} of {samples} samples skipped (no result in the trace); "
            "rerun the same command to resume them"
        )


def _memagent_input(config: MemAgentRunConfig) -> str:
    if config.dataset is not None:
        return str(config.dataset.path)
    if config.benchmark is not None:
        return str(config.benchmark.path or f"the {config.benchmark.name} benchmark")
    assert config.document is not None  # the config validator guarantees one input
    return str(config.document.path)
