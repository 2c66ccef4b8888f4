"""The `openai` backend over real HTTP: against `qwenlong serve` and a fault-injecting server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qwenlong.core.backends import BackendConfig, make_chat_model
from qwenlong.core.backends.config import OpenAIBackendConfig
from qwenlong.core.backends.openai import OpenAIChatModel, parse_choices, retry_after_s
from qwenlong.core.errors import BackendError, BackendUnavailable
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Conversation
from qwenlong.core.serve import make_server
from qwenlong.core.testing import EchoChatModel


def user(text: str) -> Conversation:
    return [{"role": "user", "content": text}]


def client(base_url: str, **kwargs) -> OpenAIChatModel:
    settings = {"max_retries": 3, "backoff_s": 0.01, "timeout_s": 5.0} | kwargs
    return OpenAIChatModel("echo", base_url, **settings)


# ---- against qwenlong serve ------------------------------------------------------------------


@pytest.fixture
def echo_server(echo_chat_model: EchoChatModel):
    with make_server(echo_chat_model, port=0, served_name="echo").start() as server:
        yield server, echo_chat_model


def test_round_trip_groups_orders_and_parses(echo_server) -> None:
    server, model = echo_server
    backend = client(server.url)
    sampling = SamplingParams(
        max_new_tokens=3, temperature=0.3, top_p=0.9, n=2, stop=("\n",), seed=4, logprobs=True
    )
    try:
        results = backend.generate([user("a"), user("bc"), user("d")], sampling)
    finally:
        backend.close()
    assert [[c.text for c in group] for group in results] == [
        ["a#0", "a#1"],
        ["bc#", "bc#"],  # "bc#k" is cut at max_new_tokens
        ["d#0", "d#1"],
    ]
    first, cut = results[0][1], results[1][1]
    assert first.token_ids == [97, 35, 49] and first.finish_reason == "stop"
    assert cut.token_ids == [98, 99, 35]
    assert cut.logprobs == pytest.approx([-0.1, -0.2, -0.3])
    assert cut.finish_reason == "length" and cut.prompt_tokens == 2
    # every setting crossed the wire intact
    assert {s for _, s in model.calls} == {sampling}


def test_no_logprobs_unless_asked(echo_server) -> None:
    server, _ = echo_server
    backend = client(server.url)
    [[completion]] = backend.generate([user("x")], SamplingParams(temperature=0.0))
    backend.close()
    assert completion.logprobs is None and completion.token_ids == [120, 35, 48]


def test_safe_from_threads_and_inside_a_running_loop(echo_server) -> None:
    server, _ = echo_server
    backend = client(server.url)
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = backend.generate([user(str(i))], SamplingParams())[0][0].text

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    async def inside_loop() -> str:
        return backend.generate([user("async")], SamplingParams())[0][0].text

    assert asyncio.run(inside_loop()) == "async#0"
    backend.close()
    assert results == {i: f"{i}#0" for i in range(6)}
    assert backend.generate([user("again")], SamplingParams())[0][0].text == "again#0"
    backend.close()


def test_make_chat_model_builds_it_from_config(echo_server) -> None:
    server, _ = echo_server
    config = BackendConfig(
        backend="openai", model="echo", openai=OpenAIBackendConfig(base_url=server.url + "/")
    )
    backend = make_chat_model(config)
    assert isinstance(backend, OpenAIChatModel)
    assert backend.url == server.url + "/chat/completions"
    assert backend.generate([user("cfg")], SamplingParams())[0][0].text == "cfg#0"
    backend.close()


# ---- a fault-injecting server ------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def ok_body(request: dict) -> dict:
    text = request["messages"][-1]["content"]
    choices = [
        {
            "index": k,
            "message": {"role": "assistant", "content": f"{text}!{k}"},
            "finish_reason": "stop",
        }
        for k in reversed(range(request.get("n", 1)))  # out of order on purpose
    ]
    return {"choices": choices, "usage": {"prompt_tokens": 1}}


class ScriptedServer:
    """Answers request i with script[i] (the last entry repeats); a None body means `ok_body`.
    Counts attempts and the most requests it ever held at once; keeps every request body."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = script
        self.attempts = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorization: list[str | None] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    reply = owner.script[min(owner.attempts, len(owner.script) - 1)]
                    owner.attempts += 1
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                    owner.authorization.append(self.headers.get("Authorization"))
                    owner.requests.append(request)
                try:
                    time.sleep(reply.delay_s)
                    data = json.dumps(reply.body or ok_body(request)).encode()
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def start(*script: Reply) -> ScriptedServer:
        servers.append(ScriptedServer(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_retries_429_500_and_a_hang_then_succeeds(scripted) -> None:
    server = scripted(Reply(429), Reply(500), Reply(200, delay_s=1.5), Reply(200))
    backend = client(server.url, timeout_s=0.3)
    start = time.monotonic()
    [[first, second]] = backend.generate([user("q")], SamplingParams(n=2))
    elapsed = time.monotonic() - start
    backend.close()
    assert server.attempts == 4
    assert (first.text, second.text) == ("q!0", "q!1")  # ordered by index
    assert 0.3 <= elapsed < 1.5  # the hang was cut at timeout_s, not waited out


def test_retry_after_is_honoured(scripted) -> None:
    server = scripted(
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}), Reply(200)
    )
    backend = client(server.url)
    start = time.monotonic()
    assert backend.generate([user("q")], SamplingParams())[0][0].text == "q!0"
    backend.close()
    assert time.monotonic() - start >= 1.0
    assert server.attempts == 2


def test_gives_up_with_the_last_cause(scripted) -> None:
    server = scripted(Reply(503, {"error": {"message": "engine\noverloaded"}}))
    backend = client(server.url, max_retries=2)
    with pytest.raises(BackendUnavailable) as caught:
        backend.generate([user("q")], SamplingParams())
    backend.close()
    url = server.url + "/chat/completions"
    assert (
        str(caught.value)
        == f"backend unavailable: {url}: HTTP 503: engine overloaded after 2 retries"
    )
    assert server.attempts == 3


def test_client_errors_are_not_retried(scripted) -> None:
    server = scripted(Reply(400, {"error": {"message": "prompt is too long"}}))
    backend = client(server.url)
    with pytest.raises(BackendError) as caught:
        backend.generate([user("q")], SamplingParams())
    backend.close()
    assert not isinstance(caught.value, BackendUnavailable)
    url = server.url + "/chat/completions"
    assert str(caught.value) == f"backend error: {url}: HTTP 400: prompt is too long"
    assert server.attempts == 1


def test_unreachable_port_fails_fast() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = client(f"http://127.0.0.1:{port}/v1")
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        backend.generate([user("q")], SamplingParams())
    backend.close()
    assert time.monotonic() - start < 2.0
    assert str(caught.value) == (
        f"backend unavailable: http://127.0.0.1:{port}/v1/chat/completions: "
        "connection refused after 3 retries"
    )


def test_concurrency_bound_is_respected(scripted) -> None:
    server = scripted(Reply(200, delay_s=0.2))
    backend = client(server.url, max_concurrency=3)
    results = backend.generate([user(str(i)) for i in range(12)], SamplingParams())
    backend.close()
    assert [group[0].text for group in results] == [f"{i}!0" for i in range(12)]
    assert server.attempts == 12
    assert server.max_in_flight == 3


def test_api_key_comes_from_the_configured_variable(scripted, monkeypatch) -> None:
    server = scripted(Reply(200))
    monkeypatch.setenv("QWENLONG_TEST_KEY", "sk-test")
    settings = OpenAIBackendConfig(base_url=server.url, api_key_env="QWENLONG_TEST_KEY")
    backend = OpenAIChatModel.from_config(
        BackendConfig(backend="openai", model="m", openai=settings)
    )
    backend.generate([user("q")], SamplingParams())
    backend.close()
    monkeypatch.delenv("QWENLONG_TEST_KEY")
    anonymous = OpenAIChatModel.from_config(
        BackendConfig(backend="openai", model="m", openai=settings)
    )
    anonymous.generate([user("q")], SamplingParams())
    anonymous.close()
    assert server.authorization == ["Bearer sk-test", None]


def test_return_token_ids_comes_from_the_config(scripted) -> None:
    server = scripted(Reply(200))
    for extra in ({"return_token_ids": True}, {}):
        settings = OpenAIBackendConfig(base_url=server.url, **extra)
        backend = OpenAIChatModel.from_config(
            BackendConfig(backend="openai", model="m", openai=settings)
        )
        backend.generate([user("q")], SamplingParams())
        backend.close()
    with_ids, without = server.requests
    assert with_ids["return_token_ids"] is True
    assert "return_token_ids" not in without  # off by default: hosted APIs reject it


# ---- pure pieces ---------------------------------------------------------------------------------


def test_payload_sends_only_what_is_set() -> None:
    backend = OpenAIChatModel("m", "http://h/v1")
    plain = backend.payload(user("q"), SamplingParams(max_new_tokens=9, temperature=0.0, top_p=1.0))
    assert plain == {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 9,
    }
    full = OpenAIChatModel("m", "http://h/v1", return_token_ids=True).payload(
        user("q"), SamplingParams(stop=("a", "b"), seed=3, logprobs=True, n=4)
    )
    assert full["stop"] == ["a", "b"] and full["seed"] == 3 and full["n"] == 4
    assert full["logprobs"] is True and full["return_token_ids"] is True


def test_parse_choices_reads_vllm_token_ids_and_logprobs() -> None:
    body = {
        "choices": [
            {
                "index": 1,
                "message": {"content": None},
                "finish_reason": "length",
                "token_ids": [7],
                "logprobs": {"content": [{"token": "x", "logprob": -2.5}]},
            },
            {
                "index": 0,
                "message": {"content": "hi"},
                "finish_reason": "stop",
                "token_ids": [5, 6],
                "logprobs": {"content": [{"token": "h", "logprob": -0.5}, {"logprob": -1.0}]},
            },
        ],
        "usage": {"prompt_tokens": 11},
    }
    first, second = parse_choices(body, 2, "u", logprobs=True)
    assert (first.text, first.token_ids, first.logprobs) == ("hi", [5, 6], [-0.5, -1.0])
    assert (second.text, second.finish_reason, second.logprobs) == ("", "length", [-2.5])
    assert first.prompt_tokens == 11
    assert parse_choices(body, 2, "u", logprobs=False)[0].logprobs is None
    with pytest.raises(BackendError, match="asked for n=3 choices, the response has 2"):
        parse_choices(body, 3, "u", logprobs=True)
    with pytest.raises(BackendError, match="no 'choices' list"):
        parse_choices({"error": "x"}, 1, "u", logprobs=False)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    backend = OpenAIChatModel("m", "http://h/v1", backoff_s=1.0)
    for retry in (1, 2, 3, 4):
        delays = [backend.backoff(retry, None) for _ in range(50)]
        assert all(0.5 * 2 ** (retry - 1) <= d <= 2 ** (retry - 1) for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert backend.backoff(20, None) == 60.0
    assert backend.backoff(1, 7.0) == 7.0  # Retry-After lengthens the wait
    assert backend.backoff(1, 3600.0) == 60.0


def test_retry_after_header_forms() -> None:
    import email.utils

    import httpx

    def header(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after_s(header("2")) == 2.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_s(header(future)) <= 31
    assert retry_after_s(header("soon")) is None
    assert retry_after_s(httpx.Response(429)) is None


# ---- the tiny model behind qwenlong serve -------------------------------------------------------


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingParams(max_new_tokens=8, temperature=0.0, logprobs=True),
        SamplingParams(max_new_tokens=8, temperature=0.7, n=2, seed=3, logprobs=True),
        SamplingParams(max_new_tokens=8, temperature=0.7, seed=5, stop=("e",)),
    ],
)
def test_tiny_model_over_http_equals_direct_generation(tiny_chat_model, sampling) -> None:
    """Text, token ids, finish reasons and prompt lengths survive the server and the client
    unchanged. Log-probs agree to float32 rounding: the server may batch the conversations
    differently, and padding changes the last bits of a float32 forward pass."""
    conversations = [
        user("hello there"),
        [{"role": "system", "content": "be terse"}, *user("abc")],
        user("a longer question about the documents"),
    ]
    direct = tiny_chat_model.generate(conversations, sampling)
    with make_server(tiny_chat_model, port=0, served_name="tiny").start() as server:
        backend = OpenAIChatModel("tiny", server.url, max_retries=0)
        remote = backend.generate(conversations, sampling)
        backend.close()
    for got, want in zip(remote, direct, strict=True):
        assert [(c.text, c.token_ids, c.finish_reason, c.prompt_tokens) for c in got] == [
            (c.text, c.token_ids, c.finish_reason, c.prompt_tokens) for c in want
        ]
        for g, w in zip(got, want, strict=True):
            assert (g.logprobs is None) == (w.logprobs is None)
            if w.logprobs is not None:
                assert g.logprobs == pytest.approx(w.logprobs, abs=1e-4)
