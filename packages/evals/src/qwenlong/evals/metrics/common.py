"""What every rule metric shares: options as a typed config, and binary scores.

A metric is a `ConfigModel` subclass with a `__call__(sample, output) -> Score`: its fields are
its options (documented, validated, unknown ones rejected), and the class itself is the factory
that `METRICS` registers. `build_metric` turns pydantic's multi-line validation errors into the
project's one-line `ConfigError`.
"""

from __future__ import annotations

import difflib
from abc import abstractmethod
from typing import Any, TypeVar

from pydantic import ValidationError

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError
from qwenlong.core.records import TaskSample
from qwenlong.evals.interfaces import Score
from qwenlong.evals.reasoning import answer_text

M = TypeVar("M", bound=ConfigModel)


class RuleMetric(ConfigModel):
    """Base class of the rule metrics; subclasses add options and implement `__call__`."""

    @abstractmethod
    def __call__(self, sample: TaskSample, output: str) -> Score:
        """Grade `output` against `sample.answers`."""


def build_metric(cls: type[M], name: str, options: dict[str, Any]) -> M:
    """Instantiate metric `cls` with `options`, or raise a one-line `ConfigError`."""
    known = list(cls.model_fields)
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            choices = ", ".join(known) if known else "none"
            raise ConfigError(
                f"metric {name!r}: unknown option {key!r}{hint}; its options: {choices}"
            )
    try:
        return cls(**options)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"metric {name!r}: option {where}: {first['msg']}") from err


def prediction_text(output: str, strip_reasoning: bool) -> str:
    """The text an official scorer would have seen: the answer part, or the raw output."""
    return answer_text(output) if strip_reasoning else output


def binary(correct: bool, /, **details: Any) -> Score:
    """A 0/1 score; `details` are stored as given."""
    return Score(1.0 if correct else 0.0, correct, details)


def no_gold(extracted: Any) -> Score:
    """The score of a sample without gold answers (legal only for empty SQL results): 0."""
    return Score(0.0, False, {"extracted": extracted, "reason": "no gold answer"})
