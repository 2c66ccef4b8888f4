"""The server holds against clients: limits, malformed bodies and stalled sockets are client
errors (400, 408) answered in one line, never a 500 or a handler thread held forever."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence

import httpx
import pytest

from qwenlong.core.continuous_batcher import ContinuousBatcher
from qwenlong.core.decoding import RequestTooLong
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.core.request_batcher import MicroBatcher
from qwenlong.core.serve import make_server
from qwenlong.core.testing import EchoChatModel

HTTP = httpx.Client(timeout=30)
MESSAGES = [{"role": "user", "content": "x"}]


def post(server, body: dict | bytes) -> httpx.Response:
    if isinstance(body, bytes):
        return HTTP.post(server.url + "/chat/completions", content=body)
    return HTTP.post(server.url + "/chat/completions", json=body)


def assert_client_error(reply: httpx.Response, status: int, param: str | None = None) -> str:
    """The reply is `status` with a one-line message (returned) naming `param`."""
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert "\n" not in error["message"] and error["message"]
    assert error["param"] == param
    return error["message"]


@pytest.fixture
def echo_server(echo_chat_model):
    server = make_server(echo_chat_model, port=0, served_name="echo", max_n=4, max_tokens_limit=100)
    with server.start():
        yield server


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": MESSAGES, "n": 5}, "n", "allows 4"),
        ({"messages": MESSAGES, "max_tokens": 101}, "max_tokens", "allows 100"),
        ({"messages": MESSAGES, "max_completion_tokens": 10**9}, "max_completion_tokens", "100"),
    ],
)
def test_n_and_max_tokens_over_the_server_limits_are_400(echo_server, body, param, words) -> None:
    message = assert_client_error(post(echo_server, body), 400, param)
    assert words in message


def test_requests_within_the_limits_are_served(echo_server) -> None:
    reply = post(echo_server, {"messages": MESSAGES, "n": 4, "max_tokens": 100})
    assert reply.status_code == 200 and len(reply.json()["choices"]) == 4


def test_default_max_tokens_is_capped_by_the_limit(echo_chat_model) -> None:
    server = make_server(echo_chat_model, port=0, default_max_tokens=512, max_tokens_limit=64)
    assert server.default_max_tokens == 64
    server.server_close()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"messages": [{"role": "user", "content": "x"}], "temperature": '
        + b"[" * 900
        + b"]" * 900
        + b"}",
    ],
    ids=["top-level", "messages", "quoted-in-error"],
)
def test_deeply_nested_json_is_400(echo_server, body: bytes) -> None:
    reply = post(echo_server, body)
    assert reply.status_code == 400, reply.text
    assert "\n" not in reply.json()["error"]["message"]


def test_negative_content_length_is_400(echo_server) -> None:
    with socket.create_connection(echo_server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")


def test_a_body_shorter_than_its_content_length_times_out_with_408(echo_chat_model) -> None:
    server = make_server(echo_chat_model, port=0, read_timeout_s=0.3).start()
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        sock.sendall(head + b'{"messages"')
        start = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):  # to the end: the server closes the connection
            answer += chunk
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 0.3 s" in answer
    assert waited < 5
    closing = time.monotonic()
    server.close()  # no handler thread is left waiting on the stalled client
    assert time.monotonic() - closing < 2
    assert echo_chat_model.calls == []


def test_a_stalled_request_line_is_dropped(echo_chat_model) -> None:
    server = make_server(echo_chat_model, port=0, read_timeout_s=0.3).start()
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/comp")
        assert sock.recv(4096) == b""  # the server hung up after its read timeout
    server.close()


def test_max_tokens_beyond_the_model_positions_is_400(tiny_chat_model) -> None:
    positions = tiny_chat_model.max_positions
    server = make_server(tiny_chat_model, port=0, max_tokens_limit=positions + 1).start()
    try:
        assert isinstance(server.batcher, ContinuousBatcher)
        body = {"messages": MESSAGES, "max_tokens": positions}
        message = assert_client_error(post(server, body), 400, "max_tokens")
        assert f"exceeds the model's {positions} positions" in message
        fine = post(server, {"messages": MESSAGES, "max_tokens": 2, "temperature": 0})
        assert fine.status_code == 200
    finally:
        server.close()


class LengthCheckingModel(EchoChatModel):
    """Refuses a whole call when one conversation says "too long", as the hf backend does;
    the first call waits for `release` so that a queue builds up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10)
        if any(c[-1]["content"] == "too long" for c in conversations):
            self.calls.append((list(conversations), sampling))
            raise RequestTooLong("prompt + max_new_tokens exceeds the model's positions")
        return super().generate(conversations, sampling)


def test_micro_batcher_fails_only_the_request_that_is_too_long() -> None:
    model = LengthCheckingModel()
    batcher = MicroBatcher(model, max_batch=8, max_wait_s=0.0)
    sampling = SamplingParams(max_new_tokens=50)
    first = batcher.submit([{"role": "user", "content": "first"}], sampling)
    assert model.entered.wait(5)
    bad = batcher.submit([{"role": "user", "content": "too long"}], sampling)
    good = batcher.submit([{"role": "user", "content": "fine"}], sampling)
    model.release.set()
    assert first.result(5)[0].text == "first#0" and good.result(5)[0].text == "fine#0"
    with pytest.raises(RequestTooLong):
        bad.result(5)
    batcher.close()
    assert [len(conversations) for conversations, _ in model.calls] == [1, 2, 1, 1]


class StepRecorder:
    """Wraps the hf model; records how many requests each decoding step served."""

    def __init__(self, model) -> None:
        self.model = model
        self.name = model.name
        self.widths: list[int] = []

    def generate(self, conversations, sampling):  # type: ignore[no-untyped-def]
        return self.model.generate(conversations, sampling)

    def close(self) -> None:
        pass

    def decoder(self) -> StepRecorder:
        self.inner = self.model.decoder()
        return self

    @property
    def active(self) -> int:
        return self.inner.active

    def can_admit(self) -> bool:
        return self.inner.can_admit()

    def admit(self, requests):  # type: ignore[no-untyped-def]
        return self.inner.admit(requests)

    def step(self):  # type: ignore[no-untyped-def]
        self.widths.append(self.inner.active)
        return self.inner.step()


def test_concurrent_seeded_clients_share_steps_and_get_what_they_get_alone(
    tiny_chat_model,
) -> None:
    """Four clients with four seeds and settings decode together, yet each gets the tokens a
    request of its own gives."""
    recorder = StepRecorder(tiny_chat_model)
    server = make_server(recorder, port=0).start()
    bodies = {
        name: {
            "messages": [{"role": "user", "content": name}],
            "max_tokens": 12,
            "temperature": temperature,
            "seed": seed,
        }
        for name, temperature, seed in [
            ("a", 1.0, 1),
            ("bb", 0.7, 2),
            ("c c", 0.0, 3),
            ("d", 1.3, 4),
        ]
    }
    try:
        alone = {name: post(server, body).json()["choices"] for name, body in bodies.items()}
        together: dict[str, list] = {}

        def ask(name: str) -> None:
            together[name] = post(server, bodies[name]).json()["choices"]

        threads = [threading.Thread(target=ask, args=(name,)) for name in bodies]
        recorder.widths.clear()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        server.close()
    assert max(recorder.widths) >= 2  # seeded requests with other settings shared steps
    assert {n: [c["token_ids"] for c in v] for n, v in together.items()} == {
        n: [c["token_ids"] for c in v] for n, v in alone.items()
    }
