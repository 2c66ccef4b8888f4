"""The `openai` backend: any OpenAI-compatible chat endpoint (`vllm serve`, `qwenlong serve`, APIs).

Synthesis, judging and evaluation send thousands of independent conversations to a server, so
the client sends one request per conversation, many at once (bounded by `max_concurrency`),
and rides out a busy or restarting server: 429, 5xx, refused connections and timeouts are
retried with exponential backoff and jitter, honouring `Retry-After`. Only when every retry has
failed does it raise `BackendUnavailable`, which callers treat as "try later".

The requests run on an asyncio loop owned by the backend, on a private thread, so `generate`
is an ordinary blocking call that works the same from plain code, from several threads at once,
and from inside someone else's running event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.errors import BackendError, BackendUnavailable
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKOFF_S = 60.0
"""Longest wait between two attempts, `Retry-After` included (see OpenAIBackendConfig.backoff_s)."""

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
"""Statuses worth retrying: overload (429) and the server's own failures (5xx). Any other 4xx
means the request itself is wrong, and sending it again cannot help."""


class _LoopThread:
    """An asyncio event loop running on its own daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="qwenlong-openai-client", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and block the calling thread until it finishes."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C in the caller abandons the requests too
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@dataclass
class _Session:
    """What one backend holds while open: its loop thread, connection pool and request slots."""

    runner: _LoopThread
    client: httpx.AsyncClient
    slots: asyncio.Semaphore
    """One slot per request in flight: at most `max_concurrency` at once."""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(response: httpx.Response) -> str:
    """The error text a server put in its body: OpenAI's `error.message`, FastAPI's `detail`,
    or the raw text, on one line."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _one_line(response.text) or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return _one_line(str(error["message"]))
        for key in ("message", "detail", "error"):
            if body.get(key):
                return _one_line(str(body[key]))
    return _one_line(response.text)


def retry_after_s(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _root_cause(err: BaseException) -> BaseException:
    """The innermost exception: httpx wraps the socket error ("connection refused") that says
    what actually went wrong in "All connection attempts failed"."""
    while (inner := err.__cause__ or err.__context__) is not None:
        err = inner
    return err


def _transport_cause(err: httpx.TransportError) -> str:
    detail = _one_line(str(err)) or type(err).__name__
    if isinstance(err, httpx.ConnectError):
        if isinstance(_root_cause(err), ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect ({_one_line(str(_root_cause(err))) or detail})"
    if isinstance(err, httpx.TimeoutException):
        return f"timed out ({type(err).__name__})"
    return f"{type(err).__name__}: {detail}"


def parse_choices(body: Any, n: int, url: str, logprobs: bool) -> list[Completion]:
    """The `n` choices of one chat-completion response, ordered by their index.

    Log-probs come from `choices[i].logprobs.content[j].logprob`; token ids from
    `choices[i].token_ids`, which vLLM returns with `return_token_ids` and `qwenlong serve`
    always returns (empty when the server gives none).
    """
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        raise BackendError(f"{url}: the response has no 'choices' list")
    if len(choices) != n:
        raise BackendError(f"{url}: asked for n={n} choices, the response has {len(choices)}")
    usage = body.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    completions = []
    for i, choice in enumerate(sorted(choices, key=lambda c: c.get("index", 0))):
        try:
            text = choice["message"].get("content") or ""
            content = (choice.get("logprobs") or {}).get("content") if logprobs else None
            token_logprobs = [float(item["logprob"]) for item in content] if content else None
            token_ids = [int(t) for t in choice.get("token_ids") or []]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise BackendError(f"{url}: malformed choice {i} in the response ({err!r})") from err
        completions.append(
            Completion(
                text=text,
                token_ids=token_ids,
                logprobs=token_logprobs,
                finish_reason=choice.get("finish_reason") or "stop",
                prompt_tokens=prompt_tokens,
            )
        )
    return completions


class OpenAIChatModel:
    """A `ChatModel` that sends each conversation to `{base_url}/chat/completions`."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 600.0,
        return_token_ids: bool = False,
    ) -> None:
        """`return_token_ids` adds vLLM's extension field to every request; hosted APIs reject
        unknown fields, so it is sent only when asked for."""
        self.name = name
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.return_token_ids = return_token_ids
        self.max_concurrency = max_concurrency
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._lock = threading.Lock()
        self._session: _Session | None = None

    @classmethod
    def from_config(cls, config: BackendConfig) -> OpenAIChatModel:
        """Built from `config.model` (the served model name) and `config.openai`."""
        settings = config.openai
        return cls(
            name=config.model,
            base_url=settings.base_url,
            api_key=os.environ.get(settings.api_key_env) or None,
            max_concurrency=settings.max_concurrency,
            max_retries=settings.max_retries,
            backoff_s=settings.backoff_s,
            timeout_s=settings.timeout_s,
            return_token_ids=settings.return_token_ids,
        )

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """`sampling.n` completions per conversation, in input order; requests run concurrently."""
        if not conversations:
            return []
        session = self._open()
        return session.runner.run(self._generate_all(session, conversations, sampling))

    def close(self) -> None:
        """Close the connection pool and stop the private loop thread; `generate` reopens them."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.runner.run(session.client.aclose())
            session.runner.stop()

    def payload(self, conversation: Conversation, sampling: SamplingParams) -> dict[str, Any]:
        """The JSON body of one request."""
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [dict(message) for message in conversation],
            "n": sampling.n,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.logprobs:
            body["logprobs"] = True
        if self.return_token_ids:
            body["return_token_ids"] = True
        return body

    def _open(self) -> _Session:
        """Start the loop thread and its HTTP client on first use (thread-safe)."""
        with self._lock:
            if self._session is None:
                runner = _LoopThread()
                self._session = runner.run(self._connect(runner))
            return self._session

    async def _connect(self, runner: _LoopThread) -> _Session:
        """Made on the loop itself, so the client and semaphore belong to it."""
        limits = httpx.Limits(max_connections=self.max_concurrency)
        client = httpx.AsyncClient(
            headers=self._headers, timeout=httpx.Timeout(self.timeout_s), limits=limits
        )
        return _Session(runner, client, asyncio.Semaphore(self.max_concurrency))

    async def _generate_all(
        self, session: _Session, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        tasks = [asyncio.create_task(self._complete(session, c, sampling)) for c in conversations]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:  # the first failure abandons the rest
                task.cancel()

    def backoff(self, retry: int, retry_after: float | None) -> float:
        """Delay before retry number `retry` (1-based): `backoff_s * 2**(retry-1)` scaled by a
        random factor in [0.5, 1] so clients that failed together do not return together, at
        least the server's `Retry-After`, never more than MAX_BACKOFF_S."""
        delay = self.backoff_s * 2 ** (retry - 1) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, MAX_BACKOFF_S)

    async def _complete(
        self, session: _Session, conversation: Conversation, sampling: SamplingParams
    ) -> list[Completion]:
        """One conversation: send, retry what can be retried, parse."""
        body = self.payload(conversation, sampling)
        cause = ""
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self.backoff(attempt, retry_after)
                log.info("%s: %s; retry %d in %.2f s", self.url, cause, attempt, delay)
                await asyncio.sleep(delay)
            retry_after = None
            try:
                async with session.slots, asyncio.timeout(self.timeout_s):
                    response = await session.client.post(self.url, json=body)
            except TimeoutError:
                cause = f"no response within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as err:
                cause = _transport_cause(err)
                continue
            if response.status_code == 200:
                try:
                    data = response.json()
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise BackendError(f"{self.url}: the response is not JSON ({err})") from err
                return parse_choices(data, sampling.n, self.url, sampling.logprobs)
            message = f"HTTP {response.status_code}: {server_message(response)}"
            if response.status_code not in RETRY_STATUSES:
                raise BackendError(f"{self.url}: {message}")
            cause, retry_after = message, retry_after_s(response)
        retries = self.max_retries
        suffix = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        raise BackendUnavailable(f"{self.url}: {cause}{suffix}")
