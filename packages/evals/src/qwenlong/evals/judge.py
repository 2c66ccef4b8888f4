"""The LLM judge, and the paper's score: max(rule metric, judge), the judge asked only where needed.

The paper (RECIPE.md section 4) grades open answers by cover exact match and, where that fails,
asks an LLM judge (DeepSeek-V3) whether the prediction and the gold answer are equivalent,
without solving the problem. Its judge writes a short explanation, then the verdict in a fixed
tag, [[YES]] or [[NO]]; the shipped prompt (`templates/judge.txt`, selectable as `judge` in a
config's `prompts:`) asks for the same structure in our words. The verdict is the LAST tag after
the reasoning: the explanation comes first and may mention a tag in passing. (CorpusQA's
official rule, "[[YES]] present and [[NO]] absent", differs where a reply holds both tags, and
where it holds neither: no, there; pending, here.)

A reply with no tag at all (cut off by the token budget, or a judge that ignored the format) is
no verdict: the item stays pending, exactly like an item the judge could not be asked because
of an outage, and is never scored wrong for it.

Judging is the slow, paid part of scoring, so verdicts are cached on disk: a JSONL line per
reply, appended as soon as the model answers, keyed by a hash of the judge model's name, the
prompt template, the question, the prediction and the gold answer. A re-run (or a resumed run)
asks nothing twice; replies without a verdict are written for inspection and asked again. A
failed call caches nothing and its `BackendUnavailable` propagates, so callers leave the items
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
from qwenlong.core.prompt_set import DEFAULT_PROMPTS, PromptSet
from qwenlong.core.prompt_templates import default_template
from qwenlong.core.records import Conversation, TaskSample
from qwenlong.evals.interfaces import Judge, JudgeItem, Score, Scorer
from qwenlong.evals.prompts import JUDGE
from qwenlong.evals.reasoning import answer_text

JUDGE_PROMPT = default_template(JUDGE).text
"""The shipped judge template (`$question`, `$gold`, `$prediction`): our wording of the paper's
equivalence check. The question is given for context only; the judge is told not to answer it."""

YES = "[[YES]]"
NO = "[[NO]]"

DEFAULT_JUDGE_SAMPLING = SamplingParams(max_new_tokens=512, temperature=0.0, top_p=1.0)
"""Greedy. The budget holds the one-or-two-sentence explanation the prompt asks for (about
30-80 tokens) and the verdict line with a wide margin for wordy judges; a reply cut before its
tag is pending, not wrong. A reasoning judge (gpt-oss, R1) needs its thinking budget on top.
Not published; our choice."""

PURE_JUDGE = "judge"
"""Metric name `make_judged_scorer` reads as "no rule, the judge grades every answer"."""


def final_text(output: str) -> str:
    """The answer part of a response, stripped: after the last `</think>`, or all of it."""
    return answer_text(output).strip()


def parse_verdict(reply: str) -> bool | None:
    """The last [[YES]] or [[NO]] in the reply's final part; None when it has neither.

    Reasoning judges may weigh both tags while thinking, so only the text after `</think>`
    counts; within it the explanation comes first, so the last tag is the verdict.
    """
    text = final_text(reply)
    yes, no = text.rfind(YES), text.rfind(NO)
    if yes < 0 and no < 0:
        return None
    return yes > no


def judge_messages(item: JudgeItem, prompts: PromptSet = DEFAULT_PROMPTS) -> Conversation:
    """The one-turn conversation that asks the judge about `item`."""
    content = prompts.render(
        JUDGE.name, question=item.question, gold=item.gold, prediction=item.prediction
    )
    return [{"role": "user", "content": content}]


class LLMJudge:
    """A `Judge` backed by any `ChatModel`, batched and cached.

    All uncached items of one `judge` call go to the model in a single `generate` call, so an
    OpenAI-compatible backend runs them concurrently. `prompts` picks the judge template.
    """

    def __init__(
        self,
        model: ChatModel,
        sampling: SamplingParams | None = None,
        cache_path: Path | None = None,
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        self.model = model
        self.sampling = sampling or DEFAULT_JUDGE_SAMPLING
        if self.sampling.n != 1:
            raise ConfigError(f"judge sampling: n is {self.sampling.n}; the judge needs exactly 1")
        self.cache_path = cache_path
        self.prompts = prompts
        self._template = prompts.template(JUDGE.name).text
        self._cache: dict[str, bool] = {}
        if cache_path is not None and cache_path.exists():
            self._cache = _load_cache(cache_path)

    def key(self, item: JudgeItem) -> str:
        """Cache key: the judge model, its prompt template and the three texts, hashed."""
        payload = json.dumps(
            [self.model.name, self._template, item.question, item.prediction, item.gold]
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def judge(self, items: Sequence[JudgeItem]) -> list[bool | None]:
        """One verdict per item, in order (None: the reply held no verdict); cached items cost
        no model call."""
        keys = [self.key(item) for item in items]
        todo: dict[str, JudgeItem] = {}
        for key, item in zip(keys, items, strict=True):
            if key not in self._cache and key not in todo:
                todo[key] = item
        unanswered = self._ask(todo) if todo else set()
        return [None if key in unanswered else self._cache[key] for key in keys]

    def _ask(self, todo: dict[str, JudgeItem]) -> set[str]:
        """Ask about every item of `todo`; returns the keys whose reply held no verdict."""
        conversations = [judge_messages(item, self.prompts) for item in todo.values()]
        completions = self.model.generate(conversations, self.sampling)
        if len(completions) != len(conversations) or any(len(c) != 1 for c in completions):
            raise BackendError(
                f"judge model {self.model.name!r} returned {len(completions)} completion lists "
                f"for {len(conversations)} questions"
            )
        records, unanswered = [], set()
        for key, [completion] in zip(todo, completions, strict=True):
            verdict = parse_verdict(completion.text)
            if verdict is None:
                unanswered.add(key)
            else:
                self._cache[key] = verdict
            records.append({"key": key, "verdict": verdict, "reply": completion.text})
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                f.flush()
        return unanswered


def _load_cache(path: Path) -> dict[str, bool]:
    """Read a verdict cache. Every newline-terminated line must be a record.

    Records with a null verdict (a reply without a tag) are kept in the file for inspection
    and skipped here, so those items are asked again. An unterminated last line is an
    interrupted write: it is cut off the file (so the next append starts on a fresh line) and
    that item is simply asked again.
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
            if record["verdict"] is not None:
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
        verdicts: dict[int, bool | None] = {i: False for i, _ in asks}
        if asks:
            for (i, _), verdict in zip(asks, self.judge.judge([a for _, a in asks]), strict=True):
                verdicts[i] = _either(verdicts[i], verdict)
        has_rule = self.rule is not None
        return [
            _combine(s, i in verdicts, verdicts.get(i), has_rule) for i, s in enumerate(rule_scores)
        ]

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


def _either(first: bool | None, second: bool | None) -> bool | None:
    """A question's verdict over its gold answers: yes if any says yes, else pending if any
    reply held no verdict, else no."""
    if first is True or second is True:
        return True
    return None if first is None or second is None else False


def _combine(rule: Score, asked: bool, verdict: bool | None, has_rule: bool) -> Score:
    """value = max(rule, judge); `details` gain `rule`, `judge` and `decided_by`.

    `decided_by` is "rule" when the rule settled it (correct, or wrong with no judge asked),
    "judge" when the judge gave a verdict, "pending" when it was asked and gave none (the
    score is then marked `pending`: not wrong, not yet graded), and "none" for a pure judge
    with nothing to judge.
    """
    pending = asked and verdict is None
    judged = verdict is True
    if rule.correct:
        decided_by = "rule"
    elif pending:
        decided_by = "pending"
    elif asked:
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
    return Score(value, rule.correct or judged, details, pending=pending)


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
