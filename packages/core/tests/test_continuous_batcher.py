"""Continuous batching: short requests overtake long ones, any settings share a batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from qwenlong.core.continuous_batcher import ContinuousBatcher
from qwenlong.core.decoding import RequestTooLong, SteppedChatModel
from qwenlong.core.errors import BackendError, BackendUnavailable
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.core.testing import EchoChatModel


class CountingDecoder:
    """A `StepDecoder` whose request finishes after `max_new_tokens` steps; its text is the
    conversation's last message. "too long" is refused; `gate` (when set) holds each step."""

    def __init__(self, model: SteppedEcho) -> None:
        self.model = model
        self.running: dict[object, list] = {}

    @property
    def active(self) -> int:
        return len(self.running)

    def can_admit(self) -> bool:
        return True

    def admit(self, requests: Sequence[tuple[object, Conversation, SamplingParams]]):
        refused = []
        for key, conversation, sampling in requests:
            if conversation[-1]["content"] == "too long":
                refused.append((key, RequestTooLong("prompt + max_new_tokens exceeds positions")))
            else:
                self.running[key] = [conversation[-1]["content"], sampling, 0]
        return refused

    def step(self) -> list[tuple[object, list[Completion]]]:
        self.model.widths.append(len(self.running))
        self.model.settings.append({entry[1] for entry in self.running.values()})
        if self.model.fail_next:
            self.model.fail_next = False
            raise BackendError("step failed")
        self.model.entered.set()
        assert self.model.gate.wait(10)
        time.sleep(self.model.step_s)
        done = []
        for key, entry in list(self.running.items()):
            entry[2] += 1
            if entry[2] >= entry[1].max_new_tokens:
                del self.running[key]
                done.append((key, [Completion(entry[0], [], None, "length")]))
        return done


class SteppedEcho(EchoChatModel):
    """An echo model that also decodes step by step (through `CountingDecoder`)."""

    def __init__(self, step_s: float = 0.0) -> None:
        super().__init__()
        self.step_s = step_s
        self.widths: list[int] = []
        self.settings: list[set[SamplingParams]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next = False

    def decoder(self) -> CountingDecoder:
        return CountingDecoder(self)


def user(text: str) -> Conversation:
    return [{"role": "user", "content": text}]


def tokens(count: int, **settings) -> SamplingParams:
    return SamplingParams(max_new_tokens=count, **settings)


def test_the_stepped_echo_model_is_a_stepped_chat_model() -> None:
    assert isinstance(SteppedEcho(), SteppedChatModel)
    assert not isinstance(EchoChatModel(), SteppedChatModel)


def test_a_short_request_finishes_while_a_long_one_is_still_decoding() -> None:
    model = SteppedEcho(step_s=0.002)
    batcher = ContinuousBatcher(model, max_batch=4)
    long = batcher.submit(user("long"), tokens(300))
    assert model.entered.wait(5)  # the long request is decoding before the short one arrives
    short = batcher.submit(user("short"), tokens(3))
    assert short.result(5)[0].text == "short"
    assert not long.done()
    assert long.result(10)[0].text == "long"
    batcher.close()
    assert max(model.widths) == 2


def test_requests_with_different_seeds_and_settings_share_the_batch() -> None:
    model = SteppedEcho()
    model.gate.clear()
    batcher = ContinuousBatcher(model, max_batch=8)
    first = batcher.submit(user("a"), tokens(2, seed=1))
    assert model.entered.wait(5)
    others = [
        batcher.submit(user("b"), tokens(2, seed=2)),
        batcher.submit(user("c"), tokens(2, temperature=0.0)),
        batcher.submit(user("d"), tokens(2, seed=3, top_p=0.5, n=2)),
    ]
    model.gate.set()
    assert [f.result(5)[0].text for f in [first, *others]] == ["a", "b", "c", "d"]
    batcher.close()
    assert max(model.widths) == 4
    assert max(len(settings) for settings in model.settings) == 4


def test_max_batch_bounds_the_requests_decoding_at_once() -> None:
    model = SteppedEcho()
    batcher = ContinuousBatcher(model, max_batch=2)
    futures = [batcher.submit(user(str(i)), tokens(3)) for i in range(5)]
    assert [f.result(5)[0].text for f in futures] == [str(i) for i in range(5)]
    batcher.close()
    assert max(model.widths) == 2


def test_a_refused_request_fails_alone() -> None:
    model = SteppedEcho()
    model.gate.clear()
    batcher = ContinuousBatcher(model, max_batch=8)
    first = batcher.submit(user("first"), tokens(1))
    assert model.entered.wait(5)
    bad = batcher.submit(user("too long"), tokens(1))
    good = batcher.submit(user("fine"), tokens(1))
    model.gate.set()
    with pytest.raises(RequestTooLong):
        bad.result(5)
    assert good.result(5)[0].text == "fine" and first.result(5)[0].text == "first"
    batcher.close()


def test_a_failed_step_reaches_every_admitted_caller_and_the_worker_goes_on() -> None:
    model = SteppedEcho()
    model.fail_next = True
    batcher = ContinuousBatcher(model, max_batch=8, max_wait_s=0.05)
    failed = [batcher.submit(user(t), tokens(2)) for t in "xy"]
    for future in failed:
        with pytest.raises(BackendError, match="step failed"):
            future.result(5)
    assert batcher.generate(user("z"), tokens(2))[0].text == "z"
    batcher.close()


def test_close_fails_queued_requests_and_lets_admitted_ones_finish() -> None:
    model = SteppedEcho()
    model.gate.clear()
    batcher = ContinuousBatcher(model, max_batch=1)
    running = batcher.submit(user("run"), tokens(2))
    assert model.entered.wait(5)
    queued = batcher.submit(user("queued"), tokens(2))
    closer = threading.Thread(target=batcher.close)
    closer.start()
    with pytest.raises(BackendUnavailable):
        queued.result(5)
    model.gate.set()
    closer.join(5)
    assert not closer.is_alive()
    assert running.result(5)[0].text == "run"
    with pytest.raises(BackendUnavailable):
        batcher.submit(user("late"), tokens(1))
