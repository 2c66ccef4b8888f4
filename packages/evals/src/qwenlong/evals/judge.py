"""The LLM judge, and the paper's score: max(rule metric, judge), the judge asked only where needed.

The paper (RECIPE.md section 4) grades open answers by cover exact match and, where that fails,
asks DeepSeek-V3 whether the prediction and the gold answer are equivalent, without solving the
problem; the reply holds [[YES]] or [[NO]]. The verdict rule is CorpusQA's official one:
"[[YES]]" present and "[[NO]]" absent.

Judging is the slow, paid part of scoring, so verdicts are cached on disk: a JSONL line per
verdict, appended as soon as the model answers, keyed by a hash of the judge model's name, the
question, the prediction and the gold answer. A re-run (or a resumed run) asks nothing twice.
A failed call caches nothing and its `BackendUnavailable` propagates, so callers leave the items
pending instead of scoring them wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qwenlong.core.errors import BackendError, ConfigError, DatasetError
from qwenlong.core.interfaces import ChatModel, SamplingParams
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.evals.interfaces import Judge, JudgeItem, Score, Scorer
from qwenlong.evals.reasoning import answer_text

JUDGE_PROMPT = """You are comparing two answers to the same question. Do not solve the question \
yourself and do not judge whether either answer is true: decide only whether the predicted \
answer says the same thing as the reference answer.

Treat them as equivalent when they name the same entity, value or option, even if the wording, \
formatting, units notation or level of detail differs. Treat them as different when they name a \
different entity, a different number, a different option, or when the prediction is vague, \
hedged between several answers, or missing.

Question: {question}

Reference answer: {gold}

Predicted answer: {prediction}

Reply with [[YES]] if the predicted answer is equivalent to the reference answer, otherwise \
reply with [[NO]]."""
"""The judge's instruction (our wording of the paper's equivalence check). The question is given
for context only; the judge is told not to answer it."""

YES = "[[YES]]"
NO = "[[NO]]"

DEFAULT_JUDGE_SAMPLING = SamplingParams(max_new_tokens=64, temperature=0.0, top_p=1.0)
"""Greedy, short replies: the verdict is a single tag. Not published; our choice."""

PURE_JUDGE = "judge"
"""Metric name `make_judged_scorer` reads as "no rule, the judge grades every answer"."""


def final_text(output: str) -> str:
    """The answer part of a response, stripped: after the last `</think>`, or all of it."""
    return answer_text(output).strip()


def parse_verdict(reply: str) -> bool:
    """CorpusQA's rule on the reply's final part: [[YES]] present and [[NO]] absent.

    Reasoning judges may weigh both tags while thinking, so only the text after `</think>`
    counts.
    """
    text = final_text(reply)
    return YES in text and NO not in text


def judge_messages(item: JudgeItem) -> Conversation:
    """The one-turn conversation that asks the judge about `item`."""
    content = JUDGE_PROMPT.format(
        question=item.question, gold=item.gold, prediction=item.prediction
    )
    return [{"role": "user", "content": content}]


class LLMJudge:
    """A `Judge` backed by any `ChatModel`, batched and cached.

    All uncached items of one `judge` call go to the model in a single `generate` call, so an
    OpenAI-compatible backend runs them concurrently.
    """

    def __init__(
        self,
        model: ChatModel,
        sampling: SamplingParams | None = None,
        cache_path: Path | None = None,
    ) -> None:
        self.model = model
        self.sampling = sampling or DEFAULT_JUDGE_SAMPLING
        if self.sampling.n != 1:
            raise ConfigError(f"judge sampling: n is {self.sampling.n}; the judge needs exactly 1")
        self.cache_path = cache_path
        self._cache: dict[str, bool] = {}
        if cache_path is not None and cache_path.exists():
            self._cache = _load_cache(cache_path)

    def key(self, item: JudgeItem) -> str:
        """Cache key: the judge model plus the three texts, hashed."""
        payload = json.dumps([self.model.name, item.question, item.prediction, item.gold])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def judge(self, items: Sequence[JudgeItem]) -> list[bool]:
        """One verdict per item, in order; cached items cost no model call."""
        keys = [self.key(item) for item in items]
        todo: dict[str, JudgeItem] = {}
        for key, item in zip(keys, items, strict=True):
            if key not in self._cache and key not in todo:
                todo[key] = item
        if todo:
            self._ask(todo)
        return [self._cache[key] for key in keys]

    def _ask(self, todo: dict[str, JudgeItem]) -> None:
        conversations = [judge_messages(item) for item in todo.values()]
        completions = self.model.generate(conversations, self.sampling)
        if len(completions) != len(conversations) or any(len(c) != 1 for c in completions):
            raise BackendError(
                f"judge model {self.model.name!r} returned {len(completions)} completion lists "
                f"for {len(conversations)} questions"
            )
        records = []
        for key, [completion] in zip(todo, completions, strict=True):
            verdict = parse_verdict(completion.text)
            self._cache[key] = verdict
            records.append({"key": key, "verdict": verdict, "reply": completion.text})
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                f.flush()


def _load_cache(path: Path) -> dict[str, bool]:
    """Read a verdict cache. Every newline-terminated line must be a record.

    An unterminated last line is an interrupted write: it is cut off the file (so the next
    append starts on a fresh line) and that item is simply asked again.
    """
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) < len(data):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    cache: dict[str, bool] = {}
    for number, line in enumerate(complete.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            cache[record["key"]] = bool(record["verdict"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DatasetError(f"{path} line {number}: not a judge verdict record ({err})") from err
    return cache


class JudgedScorer:
    """The paper's metric: the rule for every item, the judge only where the rule says no.

    `rule` None means a pure judge (every extracted answer goes to the judge). `judge` None
    reports the rule alone, with `details["judge"]` None throughout.
    """

    def __init__(self, rule: Scorer | None, judge: Judge | None) -> None:
        if rule is None and judge is None:
            raise ConfigError("JudgedScorer needs a rule, a judge, or both; got neither")
        self.rule = rule
        self.judge = judge

    def __call__(self, sample: TaskSample, output: str) -> Score:
        return self.score_many([sample], [output])[0]

    def score_many(self, samples: Sequence[TaskSample], outputs: Sequence[str]) -> list[Score]:
        """Score each (sample, output) pair; all judge questions go out in one batch.

        An item is correct if the rule says so, or if the judge finds its extracted answer
        equivalent to any of the gold answers (one `JudgeItem` per gold answer). Items without an
        extracted answer, or without gold answers, are not sent to the judge.
        """
        if len(samples) != len(outputs):
            raise DatasetError(
                f"JudgedScorer: {len(samples)} samples but {len(outputs)} outputs to score"
            )
        rule_scores = [self._rule_score(s, o) for s, o in zip(samples, outputs, strict=True)]
        asks: list[tuple[int, JudgeItem]] = []
        for i, (sample, output, score) in enumerate(
            zip(samples, outputs, rule_scores, strict=True)
        ):
            if self.judge is None or score.correct:
                continue
            prediction = _prediction(score, output)
            if prediction:
                asks.extend((i, JudgeItem(sample.question, prediction, g)) for g in sample.answers)
        verdicts: dict[int, bool] = {i: False for i, _ in asks}
        if asks:
            for (i, _), verdict in zip(asks, self.judge.judge([a for _, a in asks]), strict=True):
                verdicts[i] = verdicts[i] or verdict
        has_rule = self.rule is not None
        return [_combine(s, verdicts.get(i), has_rule) for i, s in enumerate(rule_scores)]

    def _rule_score(self, sample: TaskSample, output: str) -> Score:
        if self.rule is not None:
            return self.rule(sample, output)
        return Score(0.0, False, {"extracted": final_text(output)})


def _prediction(score: Score, output: str) -> str:
    """What the judge compares: the rule's extracted answer, else the text after `</think>`.

    A rule that ran and extracted nothing (`details["extracted"]` None or empty) means there is
    no answer to judge.
    """
    if "extracted" in score.details:
        extracted = score.details["extracted"]
        return str(extracted).strip() if extracted is not None else ""
    return final_text(output)


def _combine(rule: Score, verdict: bool | None, has_rule: bool) -> Score:
    """value = max(rule, judge); `details` gain `rule`, `judge` and `decided_by`.

    `decided_by` is "rule" when the rule settled it (correct, or wrong with no judge asked),
    "judge" when the judge was asked, and "none" for a pure judge with nothing to judge.
    """
    judged = bool(verdict)
    if rule.correct:
        decided_by = "rule"
    elif verdict is not None:
        decided_by = "judge"
    else:
        decided_by = "rule" if has_rule else "none"
    details = {
        **rule.details,
        "rule": rule.value if has_rule else None,
        "judge": verdict,
        "decided_by": decided_by,
    }
    value = max(rule.value, 1.0 if judged else 0.0)
    return Score(value=value, correct=rule.correct or judged, details=details)


def make_judged_scorer(metric_name: str, judge: Judge | None, **options: Any) -> JudgedScorer:
    """The paper's score for a METRICS rule (e.g. "cover_em") with `judge` where it fails.

    `metric_name` "judge" gives a pure judge: no rule, every extracted answer is judged.
    """
    if metric_name == PURE_JUDGE:
        if options:
            raise ConfigError(f"metric 'judge' takes no options; got {', '.join(sorted(options))}")
        return JudgedScorer(None, judge)
    from qwenlong.evals.metrics import make_scorer  # the rule registry, needed only here

    return JudgedScorer(make_scorer(metric_name, **options), judge)
