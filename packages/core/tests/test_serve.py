"""The OpenAI-compatible server and its micro-batcher, over deterministic in-test models."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import httpx
import pytest

from qwenlong.core.chat_protocol import parse_chat_request
from qwenlong.core.errors import BackendError, BackendUnavailable
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation
from qwenlong.core.request_batcher import MicroBatcher, can_share_batch
from qwenlong.core.serve import make_server
from qwenlong.core.testing import EchoChatModel


class GateModel(EchoChatModel):
    """An echo model whose first call waits for `release`, so a queue can build up behind it."""

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
        return super().generate(conversations, sampling)


class FailingModel(EchoChatModel):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def generate(self, conversations, sampling):  # type: ignore[no-untyped-def]
        raise self.error


def user(text: str) -> Conversation:
    return [{"role": "user", "content": text}]


def batches(model: EchoChatModel) -> list[list[str]]:
    """The last message of each conversation, per recorded `generate` call."""
    return [[c[-1]["content"] for c in conversations] for conversations, _ in model.calls]


GREEDY = SamplingParams(temperature=0.0, max_new_tokens=50)
SAMPLED = SamplingParams(temperature=0.7, max_new_tokens=50)


# ---- batching ----------------------------------------------------------------------------


def test_only_identical_settings_share_a_batch() -> None:
    assert can_share_batch(SAMPLED, SamplingParams(temperature=0.7, max_new_tokens=50))
    assert not can_share_batch(SAMPLED, SamplingParams(temperature=0.7, max_new_tokens=51))
    assert not can_share_batch(SAMPLED, SamplingParams(temperature=0.7, max_new_tokens=50, seed=1))


def test_batcher_merges_queued_compatible_requests_in_arrival_order() -> None:
    model = GateModel()
    batcher = MicroBatcher(model, max_batch=8, max_wait_s=0.0)
    first = batcher.submit(user("A"), GREEDY)
    assert model.entered.wait(5)
    queued = {
        name: batcher.submit(user(name), GREEDY if name != "E" else SAMPLED) for name in "BCDEF"
    }
    model.release.set()
    assert first.result(5)[0].text == "A#0"
    for name, future in queued.items():
        assert future.result(5)[0].text == f"{name}#0"
    batcher.close()
    assert batches(model) == [["A"], ["B", "C", "D", "F"], ["E"]]
    assert [sampling for _, sampling in model.calls] == [GREEDY, GREEDY, SAMPLED]


def test_batcher_respects_max_batch() -> None:
    model = GateModel()
    batcher = MicroBatcher(model, max_batch=2, max_wait_s=0.0)
    futures = [batcher.submit(user("0"), SAMPLED)]
    assert model.entered.wait(5)
    futures += [batcher.submit(user(str(i)), SAMPLED) for i in range(1, 6)]
    model.release.set()
    assert [f.result(5)[0].text for f in futures] == [f"{i}#0" for i in range(6)]
    batcher.close()
    assert batches(model) == [["0"], ["1", "2"], ["3", "4"], ["5"]]


def test_batcher_failure_reaches_every_caller_and_worker_survives() -> None:
    model = FailingModel(BackendError("boom"))
    batcher = MicroBatcher(model, max_wait_s=0.0)
    with pytest.raises(BackendError, match="boom"):
        batcher.generate(user("x"), GREEDY)
    with pytest.raises(BackendError, match="boom"):
        batcher.generate(user("y"), GREEDY)
    batcher.close()


def test_batcher_close_fails_queued_and_refuses_new() -> None:
    model = GateModel()
    batcher = MicroBatcher(model, max_wait_s=0.0)
    running = batcher.submit(user("run"), GREEDY)
    assert model.entered.wait(5)
    queued = batcher.submit(user("queued"), SAMPLED)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    with pytest.raises(BackendUnavailable):
        queued.result(5)
    model.release.set()
    closer.join(5)
    assert not closer.is_alive()
    assert running.result(5)[0].text == "run#0"  # the batch in progress finishes
    with pytest.raises(BackendUnavailable):
        batcher.submit(user("late"), GREEDY)


# ---- request parsing -----------------------------------------------------------------------


def test_parse_request_maps_fields_and_openai_defaults() -> None:
    body = {
        "model": "echo",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ],
        "max_tokens": 9,
        "max_completion_tokens": 4,
        "stop": "\n",
        "seed": 5,
        "logprobs": True,
    }
    conversation, sampling = parse_chat_request(body, "echo", default_max_tokens=512)
    assert conversation == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "ab"},
    ]
    assert sampling == SamplingParams(
        max_new_tokens=4, temperature=1.0, top_p=1.0, n=1, stop=("\n",), seed=5, logprobs=True
    )
    _, defaults = parse_chat_request({"messages": [{"role": "user", "content": "q"}]}, "echo", 77)
    assert defaults.max_new_tokens == 77 and defaults.stop == () and not defaults.logprobs


# ---- HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def echo_server(echo_chat_model):
    server = make_server(echo_chat_model, port=0, served_name="echo", token_text=chr)
    with server.start():
        yield server, echo_chat_model


HTTP = httpx.Client(timeout=10)
"""One client for the module: building one per request (TLS context and all) costs ~0.1 s."""


def post(server, body: dict) -> httpx.Response:
    return HTTP.post(server.url + "/chat/completions", json=body)


def test_chat_completion_schema_and_values(echo_server) -> None:
    server, _ = echo_server
    body = {
        "model": "echo",
        "messages": [{"role": "user", "content": "hey"}],
        "n": 2,
        "logprobs": True,
    }
    reply = post(server, body)
    assert reply.status_code == 200
    data = reply.json()
    assert data["object"] == "chat.completion" and data["model"] == "echo"
    assert data["id"].startswith("chatcmpl-") and isinstance(data["created"], int)
    first, second = data["choices"]
    assert (first["index"], second["index"]) == (0, 1)
    assert first["message"] == {"role": "assistant", "content": "hey#0"}
    assert second["message"]["content"] == "hey#1"
    assert first["finish_reason"] == "stop"
    assert first["token_ids"] == [104, 101, 121, 35, 48]
    entries = first["logprobs"]["content"]
    assert [e["token"] for e in entries] == list("hey#0")
    assert [e["logprob"] for e in entries] == pytest.approx([-0.1, -0.2, -0.3, -0.4, -0.5])
    assert entries[0]["bytes"] == [104] and entries[0]["top_logprobs"] == []
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 10, "total_tokens": 13}


def test_length_and_stop_and_no_logprobs(echo_server) -> None:
    server, model = echo_server
    messages = [{"role": "user", "content": "abcdef"}]
    short = post(
        server, {"messages": messages, "max_tokens": 50, "max_completion_tokens": 3}
    ).json()
    assert short["choices"][0]["message"]["content"] == "abc"
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["choices"][0]["logprobs"] is None
    cut = post(server, {"messages": messages, "stop": ["d", "zz"]}).json()
    assert cut["choices"][0]["message"]["content"] == "abc"
    assert model.calls[-1][1].stop == ("d", "zz")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "user"}]}, "messages[1].content"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "n": True}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 2.5}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "top_p": 0}, "top_p"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        ({"messages": [{"role": "user", "content": "x"}], "seed": 1.5}, "seed"),
        ({"messages": [{"role": "user", "content": "x"}], "logprobs": "yes"}, "logprobs"),
        ({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 5}, "top_logprobs"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": True}, "stream"),
    ],
)
def test_bad_request_names_the_field(echo_server, body: dict, param: str) -> None:
    server, model = echo_server
    reply = post(server, body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert "\n" not in error["message"]
    assert model.calls == []


def test_unknown_model_path_and_bad_json(echo_server) -> None:
    server, _ = echo_server
    wrong = post(server, {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"
    assert "'echo'" in wrong.json()["error"]["message"]
    assert HTTP.post(server.url + "/completions", json={}).status_code == 404
    garbled = HTTP.post(server.url + "/chat/completions", content=b"{not json")
    assert garbled.status_code == 400 and "JSON" in garbled.json()["error"]["message"]


def test_models_and_health(echo_server) -> None:
    server, _ = echo_server
    models = HTTP.get(server.url + "/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["echo"]
    root = server.url.removesuffix("/v1")
    assert HTTP.get(root + "/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("error", "status"), [(BackendUnavailable("gpu lost"), 503), (BackendError("bad weights"), 500)]
)
def test_model_errors_become_server_errors(error: Exception, status: int) -> None:
    with make_server(FailingModel(error), port=0).start() as server:
        reply = post(server, {"messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == status
    assert str(error) in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RuntimeError("CUDA kernel failed\n  at frame 3"), "RuntimeError: CUDA kernel failed"),
        (ZeroDivisionError(), "ZeroDivisionError"),
    ],
)
def test_unexpected_errors_answer_one_line_naming_the_type(error: Exception, message: str) -> None:
    with make_server(FailingModel(error), port=0).start() as server:
        reply = post(server, {"messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "internal_error"
    assert reply.json()["error"]["message"] == message


def test_concurrent_clients_share_one_generate_call() -> None:
    model = GateModel()
    server = make_server(model, port=0, max_batch=8).start()
    replies: dict[str, str] = {}

    def ask(text: str) -> None:
        body = {"messages": [{"role": "user", "content": text}], "temperature": 0}
        replies[text] = post(server, body).json()["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=ask, args=("first",))]
    threads[0].start()
    assert model.entered.wait(5)
    threads += [threading.Thread(target=ask, args=(t,)) for t in ("x", "y", "z")]
    for t in threads[1:]:
        t.start()
    for _ in range(500):
        if server.batcher.pending == 3:
            break
        threading.Event().wait(0.01)
    model.release.set()
    for t in threads:
        t.join(10)
    server.close()
    assert replies == {t: f"{t}#0" for t in ("first", "x", "y", "z")}
    assert [len(names) for names in batches(model)] == [1, 3]


def test_close_frees_the_port_and_stops_the_worker() -> None:
    server = make_server(EchoChatModel(), port=0).start()
    url = server.url
    assert post(server, {"messages": [{"role": "user", "content": "x"}]}).status_code == 200
    server.close()
    server.close()  # idempotent
    assert not server.batcher._worker.is_alive()
    with pytest.raises(httpx.ConnectError):  # the pooled keep-alive connection is gone too
        HTTP.post(url + "/chat/completions", json={})


def test_taken_port_is_one_line_backend_error() -> None:
    with make_server(EchoChatModel(), port=0) as first:
        port = first.server_address[1]
        with pytest.raises(
            BackendError, match=rf"^backend error: cannot listen on 127.0.0.1:{port}: "
        ):
            make_server(EchoChatModel(), port=port)


# ---- the tiny model ------------------------------------------------------------------------


class GatedProxy:
    """Wraps a real model: records batch sizes, holds the first call until `release`."""

    def __init__(self, model) -> None:
        self.model = model
        self.name = model.name
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(self, conversations, sampling):  # type: ignore[no-untyped-def]
        self.sizes.append(len(conversations))
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10)
        return self.model.generate(conversations, sampling)

    def close(self) -> None:
        pass


def test_tiny_model_batched_requests_match_single_calls(tiny_chat_model) -> None:
    """Four clients, three of them merged into one call, each get what a call of their own gives:
    the hf backend keys its random streams by (seed, prompt, sample), not by batch position.
    Log-probs agree to float32 rounding (padding changes the last bits of the forward pass)."""
    proxy = GatedProxy(tiny_chat_model)
    decode = tiny_chat_model.tokenizer.decode
    server = make_server(proxy, port=0, token_text=lambda i: decode([i])).start()
    prompts = ["first", "the second prompt", "3", "and a fourth"]
    replies: dict[str, dict] = {}

    def ask(text: str) -> None:
        body = {
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 6,
            "temperature": 0.8,
            "seed": 9,
            "n": 2,
            "logprobs": True,
        }
        replies[text] = post(server, body).json()

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    threads[0].start()
    assert proxy.entered.wait(5)
    for t in threads[1:]:
        t.start()
    for _ in range(500):
        if server.batcher.pending == 3:
            break
        threading.Event().wait(0.01)
    proxy.release.set()
    for t in threads:
        t.join(30)
    server.close()
    assert proxy.sizes == [1, 3]
    sampling = SamplingParams(
        max_new_tokens=6, temperature=0.8, top_p=1.0, n=2, seed=9, logprobs=True
    )
    for text in prompts:
        [expected] = tiny_chat_model.generate([user(text)], sampling)
        choices = replies[text]["choices"]
        assert [c["token_ids"] for c in choices] == [e.token_ids for e in expected]
        assert [c["message"]["content"] for c in choices] == [e.text for e in expected]
        for choice, completion in zip(choices, expected, strict=True):
            entries = choice["logprobs"]["content"]
            assert [e["logprob"] for e in entries] == pytest.approx(completion.logprobs, abs=1e-4)
            assert [e["token"] for e in entries] == [decode([i]) for i in completion.token_ids]
