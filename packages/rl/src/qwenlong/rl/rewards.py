"""Rollout rewards: the evals rule for the sample's task, the judge only where the rule fails.

RECIPE.md section 2: the rule comes first (cover exact match on the answer after the reasoning
for text answers; `qwenlong.evals.task_metrics` picks exact letters for multiple choice,
numeric comparison for numbers and the MRCR SequenceMatcher ratio, a dense 0..1 reward, for
dialogue-memory needles); an LLM judge is asked only about outputs the rule marks wrong, and
the reward is max(rule, judge). Using the evals scorers means a rollout is graded exactly as
verification graded the sample when it was synthesized and as evaluation grades it later.

The combination itself is `qwenlong.evals.judge.JudgedScorer`; this module only routes each
(sample, output) pair to the scorer for its answer kind, batches the judge questions per
scorer, and refuses a non-finite reward before it can poison the advantages of a whole batch.

Two checks run before the rule and pay 0 outright: `require_think` (QwenLong-L1's) and
`answer_max_extra_words` (ours), which closes the loophole cover exact match leaves open to a
policy: an answer that lists several candidates contains the right one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field, field_validator

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.records import ANSWER_KINDS, TaskSample
from qwenlong.evals.extractors import extract_paper
from qwenlong.evals.interfaces import Judge, Score
from qwenlong.evals.judge import JudgedScorer
from qwenlong.evals.normalize import normalize_answer
from qwenlong.evals.reasoning import has_closed_reasoning
from qwenlong.evals.task_metrics import metric_for, scorer_for
from qwenlong.rl.interfaces import RewardResult


class RewardConfig(ConfigModel):
    """How a rollout is rewarded."""

    require_think: bool = False
    """Reward 0 for an output without `</think>`, whatever it says: QwenLong-L1's reward does
    this so a thinking model is paid only for answers given after closed reasoning. False by
    default because the tiny and non-thinking models never write `</think>`; turn it on for
    Qwen3 thinking models."""
    use_judge: bool = False
    """Ask the LLM judge about outputs the rule marks wrong (the paper: gpt-oss-120b during
    training). Off by default: CPU runs have no judge server."""
    judge_answer_kinds: tuple[str, ...] = ("text", "number", "choice")
    """Answer kinds the judge may overrule. "sequence" (dialogue needles) is left out: it is
    graded densely on verbatim recall, and an "equivalent" verdict would pay 1.0 for a
    paraphrase. Not published; our choice."""
    answer_max_extra_words: int | None = Field(default=None, ge=0)
    """Reward 0 for a text answer (the line cover exact match grades: after the reasoning and
    the last "answer is") longer than the longest gold answer by more than this many words,
    after the same normalisation. Cover-EM pays any answer that contains the gold, so a policy
    can learn to list candidates instead of choosing one: measured on the CPU demo, 100 GRPO
    steps turned "Therefore, the answer is lawyer." into "Therefore is lecturer is lawyer is
    lecturer is ..." and doubled the reward on questions the warm start got wrong. Only text
    answers are checked (numbers, letters and dialogue needles have exact or dense scorers).
    None keeps the paper's rule, which trusts a large model to answer in one phrase; the demo
    configs set 0, since any allowance leaves room for a second candidate beside a one-word gold
    ("lecturer or lawyer")."""

    @field_validator("judge_answer_kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(kinds) - set(ANSWER_KINDS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not among {', '.join(ANSWER_KINDS)}")
        return kinds


class RewardFn:
    """Scores outputs against their samples: `reward(samples, outputs) -> RewardResult`.

    `judge` is required when `config.use_judge` is on and ignored otherwise. A judge that
    cannot be reached raises `BackendUnavailable`; training stops there and resumes from the
    last checkpoint rather than learning from rewards that silently lost their judge half.
    """

    def __init__(self, config: RewardConfig, judge: Judge | None = None) -> None:
        if config.use_judge and judge is None:
            raise ConfigError("reward.use_judge is true but no judge model is configured")
        self.config = config
        self.judge = judge if config.use_judge else None
        self._scorers: dict[tuple[str, bool], JudgedScorer] = {}
        """(metric name, judged?) -> scorer; built on first use, shared by every call."""

    def _scorer(self, sample: TaskSample) -> tuple[str, bool]:
        """The key (metric name, judged?) of the rule-then-judge scorer for `sample`."""
        name = metric_for(sample)
        judged = self.judge is not None and sample.answer_kind in self.config.judge_answer_kinds
        if (name, judged) not in self._scorers:
            judge = self.judge if judged else None
            self._scorers[name, judged] = JudgedScorer(scorer_for(sample), judge)
        return name, judged

    def _extra_words(self, sample: TaskSample, output: str) -> int | None:
        """Words of `output`'s answer beyond the longest gold's, when over the allowance."""
        allowance = self.config.answer_max_extra_words
        if allowance is None or sample.answer_kind != "text":
            return None
        answer = normalize_answer(extract_paper(output) or "")
        longest_gold = max(
            (len(normalize_answer(gold).split()) for gold in sample.answers), default=0
        )
        extra = len(answer.split()) - longest_gold
        return extra if extra > allowance else None

    def __call__(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> RewardResult:
        """Reward each output; all judge questions of one scorer go out in one batch."""
        if len(samples) != len(outputs):
            raise DatasetError(f"rewards: {len(samples)} samples but {len(outputs)} outputs")
        scores: dict[int, Score] = {}
        keys: list[tuple[str, bool]] = []
        groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
        for i, (sample, output) in enumerate(zip(samples, outputs, strict=True)):
            keys.append(self._scorer(sample))
            if self.config.require_think and not has_closed_reasoning(output):
                scores[i] = Score(0.0, False, {"decided_by": "no_think"})
            elif (extra := self._extra_words(sample, output)) is not None:
                scores[i] = Score(0.0, False, {"decided_by": "overlong", "extra_words": extra})
            else:
                groups[keys[i]].append(i)
        for key, members in groups.items():
            graded = self._scorers[key].score_many(
                [samples[i] for i in members], [outputs[i] for i in members]
            )
            scores.update(zip(members, graded, strict=True))
        values: list[float] = []
        correct: list[bool] = []
        details: list[dict[str, Any]] = []
        for i, sample in enumerate(samples):
            score, metric = scores[i], keys[i][0]
            if not math.isfinite(score.value):
                raise DatasetError(
                    f"sample {sample.id}: scorer {metric!r} returned reward {score.value}; "
                    "rewards must be finite"
                )
            values.append(float(score.value))
            correct.append(bool(score.correct))
            details.append({"metric": metric, **score.details})
        return RewardResult(
            rewards=torch.tensor(values, dtype=torch.float32),
            correct=torch.tensor(correct, dtype=torch.bool),
            details=details,
        )
