"""A minimal OpenAI-compatible chat server over any `ChatModel`.

`qwenlong serve` puts the transformers backend behind `POST /v1/chat/completions`, so the same
clients (our `openai` backend, judges, synthesis workers, the eval runner) talk to a CPU toy
model in tests and to `vllm serve` on a cluster. Only the standard library is used: a threading
HTTP server answers clients, and one worker thread feeds the model. A model that decodes step
by step (the hf backend) gets continuous batching (`ContinuousBatcher`: requests join and
leave the batch between decoding steps, each with its own settings and seed); any other
`ChatModel` gets a `MicroBatcher`, which merges requests with identical settings into one
`generate` call.

The server holds against clients: `n` and `max_tokens` are capped by its configuration, a body
that is not JSON, is nested too deeply or asks for more than the model's positions is a 400,
and a client that stops sending mid-request is cut off after `read_timeout_s` (408).

The wire format (request validation, response bodies) lives in `qwenlong.core.chat_protocol`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qwenlong.core.chat_protocol import (
    InvalidRequest,
    TokenText,
    chat_response,
    error_body,
    parse_chat_request,
    token_id_text,
)
from qwenlong.core.continuous_batcher import ContinuousBatcher
from qwenlong.core.decoding import RequestTooLong, SteppedChatModel
from qwenlong.core.errors import BackendError, BackendUnavailable, typed_first_line
from qwenlong.core.interfaces import ChatModel
from qwenlong.core.request_batcher import MicroBatcher

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024 * 1024
"""Largest request body accepted; a 4M-token prompt is about 16 MB of text. Our choice."""
DEFAULT_MAX_N = 16
"""Most completions one request may ask for: a GRPO group is 8 to 16. Our choice."""
DEFAULT_MAX_TOKENS_LIMIT = 8192
"""Most tokens one request may ask to generate. Our choice."""
DEFAULT_READ_TIMEOUT_S = 30.0
"""How long a connection may stall while a request is being read. Our choice."""


class ChatServer(ThreadingHTTPServer):
    """The HTTP server; `make_server` builds one, `start`/`close` run it on a background thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    """Listen backlog. The standard library's 5 drops connections when a client opens its 16
    concurrent requests at once (they come back only after a SYN retry, a second later)."""
    drain_s = 5.0
    """How long `close` waits for open connections to finish their last response. Our choice."""

    def __init__(
        self,
        model: ChatModel,
        address: tuple[str, int],
        served_name: str,
        max_batch: int = 8,
        default_max_tokens: int = 512,
        token_text: TokenText = token_id_text,
        max_n: int = DEFAULT_MAX_N,
        max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT,
        read_timeout_s: float | None = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        if max_n < 1 or max_tokens_limit < 1:
            raise ValueError(f"max_n {max_n} and max_tokens_limit {max_tokens_limit} must be >= 1")
        super().__init__(address, _Handler)
        self.model = model
        self.served_name = served_name
        self.max_n = max_n
        self.max_tokens_limit = max_tokens_limit
        self.default_max_tokens = min(default_max_tokens, max_tokens_limit)
        self.read_timeout_s = read_timeout_s
        self.token_text = token_text
        self.batcher: ContinuousBatcher | MicroBatcher = (
            ContinuousBatcher(model, max_batch=max_batch)
            if isinstance(model, SteppedChatModel)
            else MicroBatcher(model, max_batch=max_batch)
        )
        self.started = int(time.time())
        self._thread: threading.Thread | None = None
        self._closed = False
        self.closing = False
        """Set by `close`: handlers end their connection after the response in progress."""
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()

    @property
    def url(self) -> str:
        """Base URL including /v1, as clients take it."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ChatServer:
        """Serve on a background thread; returns self so `with make_server(...).start() as s:`."""
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="qwenlong-serve", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, fail queued requests, wait for the batch in progress, free the port.

        Keep-alive connections would otherwise outlive the server, their handler threads parked
        waiting for a next request. Shutting their read side wakes those threads with end of
        input, a handler still writing its last response finishes it and then hangs up (see
        `closing`), and `close` waits (up to `drain_s`) until every connection is gone.
        """
        if self._closed:
            return
        self._closed = self.closing = True
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.batcher.close()
        with self._connections_changed:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # its handler closed it meanwhile
                    connection.shutdown(socket.SHUT_RD)
            self._connections_changed.wait_for(lambda: not self._connections, self.drain_s)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_changed:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._connections_changed:
            self._connections.discard(request)
            self._connections_changed.notify_all()

    def __enter__(self) -> ChatServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # The socket timeout bounds every read (request line, headers, body) and write: a
        # client that stalls, or sends less than its Content-Length, no longer holds a thread.
        self.timeout = self.server.read_timeout_s
        super().setup()

    def do_GET(self) -> None:
        route = {"/v1/models": self._models, "/health": self._health}.get(self.path.split("?")[0])
        self._dispatch(route)

    def do_POST(self) -> None:
        route = {"/v1/chat/completions": self._chat}.get(self.path.split("?")[0])
        self._dispatch(route)

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if self.server.closing:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self, route: Callable[[], dict[str, Any]] | None) -> None:
        try:
            if route is None:
                raise InvalidRequest(
                    f"no route {self.command} {self.path}", None, HTTPStatus.NOT_FOUND
                )
            self._send(HTTPStatus.OK, route())
        except InvalidRequest as err:
            kinds = {HTTPStatus.NOT_FOUND: "not_found_error", HTTPStatus.REQUEST_TIMEOUT: "timeout"}
            kind = kinds.get(err.status, "invalid_request_error")
            self._send(err.status, error_body(err.message, kind, err.param, err.code))
        except RequestTooLong as err:
            self._send(
                HTTPStatus.BAD_REQUEST, error_body(str(err), "invalid_request_error", "max_tokens")
            )
        except BackendUnavailable as err:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, error_body(str(err), "service_unavailable"))
        except BackendError as err:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, error_body(str(err), "backend_error"))
        except Exception as err:  # a server thread must answer, not die silently
            log.exception("request %s %s failed", self.command, self.path)
            message = typed_first_line(err)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, error_body(message, "internal_error"))

    def _read_json(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError as err:
            raise InvalidRequest("Content-Length is not a number") from err
        if length < 0:
            raise InvalidRequest(f"Content-Length is negative: {length}")
        if length > MAX_BODY_BYTES:
            raise InvalidRequest(
                f"request body of {length} bytes is over the {MAX_BODY_BYTES} limit"
            )
        try:
            raw = self.rfile.read(length)
        except TimeoutError as err:
            message = f"the request body did not arrive within {self.timeout:g} s"
            raise InvalidRequest(message, None, HTTPStatus.REQUEST_TIMEOUT) from err
        if len(raw) < length:
            raise InvalidRequest(f"the request body ended after {len(raw)} of {length} bytes")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InvalidRequest(f"the request body is not valid JSON: {err}") from err
        except RecursionError as err:
            raise InvalidRequest("the request body is nested too deeply") from err

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        """Write a JSON response. After an error the connection is closed: a request body the
        handler never read would otherwise be taken for the next request on the connection."""
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status != HTTPStatus.OK:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its time limit); nothing to tell

    def _health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.server.served_name}

    def _models(self) -> dict[str, Any]:
        entry = {
            "id": self.server.served_name,
            "object": "model",
            "created": self.server.started,
            "owned_by": "qwenlong",
        }
        return {"object": "list", "data": [entry]}

    def _chat(self) -> dict[str, Any]:
        server = self.server
        body = self._read_json()
        try:
            conversation, sampling = parse_chat_request(
                body, server.served_name, server.default_max_tokens
            )
        except RecursionError as err:  # a deeply nested field, quoted in an error message
            raise InvalidRequest("the request body is nested too deeply") from err
        if sampling.n > server.max_n:
            raise InvalidRequest(f"'n' is {sampling.n}; this server allows {server.max_n}", "n")
        if sampling.max_new_tokens > server.max_tokens_limit:
            given = body.get("max_completion_tokens") is not None
            field = "max_completion_tokens" if given else "max_tokens"
            raise InvalidRequest(
                f"'{field}' is {sampling.max_new_tokens}; this server allows "
                f"{server.max_tokens_limit}",
                field,
            )
        completions = server.batcher.generate(conversation, sampling)
        return chat_response(completions, server.served_name, sampling.logprobs, server.token_text)


def make_server(
    model: ChatModel,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_name: str | None = None,
    *,
    max_batch: int = 8,
    default_max_tokens: int = 512,
    token_text: TokenText = token_id_text,
    max_n: int = DEFAULT_MAX_N,
    max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT,
    read_timeout_s: float | None = DEFAULT_READ_TIMEOUT_S,
) -> ChatServer:
    """Bind a server for `model` (port 0 picks a free one); call `.start()` or `serve_forever`.

    `served_name` is the name clients must send as `model` (default: `model.name`);
    `max_batch` caps the requests decoding together (conversations per `generate` call for a
    model that cannot decode step by step); `default_max_tokens` applies when a
    request sets neither `max_tokens` nor `max_completion_tokens` (capped at
    `max_tokens_limit`); `token_text` renders token ids in log-prob entries (pass the
    tokenizer's decode). Requests asking for more than `max_n` completions or
    `max_tokens_limit` tokens are refused with 400; `read_timeout_s` (None: no limit) bounds
    each read from a client's socket.
    """
    try:
        return ChatServer(
            model,
            (host, port),
            served_name or model.name,
            max_batch=max_batch,
            default_max_tokens=default_max_tokens,
            token_text=token_text,
            max_n=max_n,
            max_tokens_limit=max_tokens_limit,
            read_timeout_s=read_timeout_s,
        )
    except OSError as err:  # port taken, address not on this machine
        raise BackendError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while serving, so both shut down cleanly (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_forever(server: ChatServer) -> None:
    """Serve on this thread until Ctrl-C or SIGTERM, then shut down cleanly.

    The model stays open: whoever built it closes it.
    """
    try:
        with _terminate_as_interrupt():
            server.serve_forever()
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        server.close()
