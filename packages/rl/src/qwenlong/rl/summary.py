"""RUN/summary.json: what a run did, built from the values its parts returned, written once.

The held-out figures are paired comparisons on the same prompts (qwenlong.rl.heldout): RL's
gain over the warm start, the SFT control's gain, and RL's lead over the control.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qwenlong.rl.heldout import gain_fields

HeldoutRecord = Mapping[str, Any]
"""One line of RUN/heldout.jsonl (`HeldoutResult.as_dict()`, plus "greedy" when evaluated)."""


def heldout_metrics(record: HeldoutRecord) -> dict[str, Any]:
    """The figures of a held-out record that go into a metrics line."""
    metrics = {"heldout_reward": record["mean"], "heldout_reward_stderr": record["stderr"]}
    if "greedy" in record:
        metrics["heldout_greedy"] = record["greedy"]["mean"]
        metrics["heldout_greedy_stderr"] = record["greedy"]["stderr"]
    return metrics


def heldout_fields(
    before: HeldoutRecord | None, after: HeldoutRecord | None, temperature: float, samples: int
) -> dict[str, Any]:
    """The summary's held-out section: each end's reward, per task, greedy, and the gain."""
    fields: dict[str, Any] = {}
    if before is not None or after is not None:
        fields["heldout_temperature"] = temperature
        fields["heldout_responses_per_prompt"] = samples
    for name, record in (("before", before), ("after", after)):
        if record is not None:
            fields[f"heldout_reward_{name}"] = record["mean"]
            fields[f"heldout_reward_{name}_stderr"] = record["stderr"]
            fields[f"heldout_{name}_by_task"] = record["by_task"]
            if "greedy" in record:
                fields[f"heldout_greedy_{name}"] = record["greedy"]["mean"]
                fields[f"heldout_greedy_{name}_stderr"] = record["greedy"]["stderr"]
    if before is not None and after is not None:
        fields.update(gain_fields("heldout_gain", before, after))
    return fields


def with_control(
    summary: Mapping[str, Any],
    control: Mapping[str, Any],
    before: HeldoutRecord | None,
    after: HeldoutRecord | None,
) -> dict[str, Any]:
    """`summary` plus the SFT control: its held-out reward, its gain over the warm start
    (`before`), and RL's lead over it (`after` minus the control), each paired on the same
    prompts. `control["heldout"]` is the control's held-out record, when evaluated."""
    out = dict(summary)
    entry = {k: v for k, v in control.items() if k != "heldout"}
    record = control.get("heldout")
    if record is not None:
        entry.update(heldout_metrics(record))
        if before is not None:
            entry.update(gain_fields("heldout_gain", before, record))
        if after is not None:
            out.update(gain_fields("rl_over_control", record, after))
    out["sft_control"] = entry
    return out


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    """The summary as indented JSON; a value JSON cannot hold is an error, not a string."""
    text = json.dumps(summary, indent=1, allow_nan=False, default=_refuse)
    path.write_text(text + "\n", encoding="utf-8")


def _refuse(value: Any) -> Any:
    raise TypeError(f"summary value {value!r} is not JSON-serialisable")
