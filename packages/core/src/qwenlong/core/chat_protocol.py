"""The OpenAI chat-completion wire format, as `qwenlong serve` speaks it.

Requests are validated field by field into a `Conversation` and `SamplingParams`; anything the
server cannot honour fails with `InvalidRequest` naming the field, which the server returns as
OpenAI's error envelope. Responses follow OpenAI's schema plus `token_ids` on every choice (the
generated tokens, as vLLM returns them with `return_token_ids`), so RL code can use the exact
sampled tokens instead of re-tokenising text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from qwenlong.core.errors import QwenlongError
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, Message

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
"""Accepted message roles; OpenAI's newer "developer" role is the system prompt by another name."""


class InvalidRequest(QwenlongError):
    """A request the server cannot serve; answered with an OpenAI-style error body."""

    kind = "invalid request"

    def __init__(
        self,
        message: str,
        param: str | None = None,
        status: HTTPStatus = HTTPStatus.BAD_REQUEST,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


TokenText = Callable[[int], str]
"""Turns a token id into its text, for the `token` field of log-prob entries."""


def token_id_text(token_id: int) -> str:
    """Fallback token text when no tokenizer is at hand: vLLM's `token_id:<id>` convention."""
    return f"token_id:{token_id}"


# ---- request -----------------------------------------------------------------------------


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number, got {value!r}", key)
    if not low <= value <= high:
        raise InvalidRequest(f"'{key}' must be between {low:g} and {high:g}, got {value}", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"'{key}' must be an integer, got {value!r}", key)
    if value < low:
        raise InvalidRequest(f"'{key}' must be at least {low}, got {value}", key)
    return value


def _content(value: Any, where: str) -> str:
    """Message content: a string, or a list of text parts (the multi-part form), joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise InvalidRequest(
                    f"only text content parts are supported at {where}[{j}]", where
                )
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{where}[{j}].text must be a string", f"{where}[{j}].text")
            texts.append(part["text"])
        return "".join(texts)
    raise InvalidRequest(f"{where} must be a string or a list of text parts", where)


def parse_messages(value: Any) -> Conversation:
    """The `messages` field as a `Conversation`; names the first bad message field."""
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'messages' must be a non-empty list", "messages")
    conversation: Conversation = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object with 'role' and 'content'", where)
        raw_role = message.get("role")
        role = ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise InvalidRequest(
                f"{where}.role must be one of {', '.join(ROLES)}, got {message.get('role')!r}",
                f"{where}.role",
            )
        content = _content(message.get("content"), f"{where}.content")
        conversation.append(Message(role=role, content=content))  # type: ignore[typeddict-item]
    return conversation


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise InvalidRequest("'stop' must be a non-empty string or a list of them", "stop")
    return tuple(items)


def parse_chat_request(
    body: Any, served_name: str, default_max_tokens: int
) -> tuple[Conversation, SamplingParams]:
    """Validate a chat-completion request body; `InvalidRequest` names the offending field.

    Omitted sampling fields take OpenAI's defaults (temperature 1, top_p 1, n 1), not the
    project's `SamplingParams` defaults, so a plain OpenAI client gets what it expects.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if body.get("stream"):
        raise InvalidRequest("streaming is not supported by this server", "stream")
    model = body.get("model")
    if model is not None and model != served_name:
        raise InvalidRequest(
            f"model {model!r} is not served here; this server serves {served_name!r}",
            "model",
            HTTPStatus.NOT_FOUND,
            "model_not_found",
        )
    conversation = parse_messages(body.get("messages"))
    top_logprobs = _integer(body, "top_logprobs", 0)
    if top_logprobs:
        raise InvalidRequest(
            "only the sampled token's log-prob is returned; set top_logprobs to 0", "top_logprobs"
        )
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise InvalidRequest(f"'logprobs' must be true or false, got {logprobs!r}", "logprobs")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest(f"'seed' must be an integer, got {seed!r}", "seed")
    max_completion = _integer(body, "max_completion_tokens", 1)
    max_tokens = _integer(body, "max_tokens", 1)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0:
        raise InvalidRequest("'top_p' must be above 0", "top_p")
    sampling = SamplingParams(
        max_new_tokens=max_completion or max_tokens or default_max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=top_p,
        n=_integer(body, "n", 1) or 1,
        stop=_stop(body.get("stop")),
        seed=seed,
        logprobs=bool(logprobs),
    )
    return conversation, sampling


# ---- response ----------------------------------------------------------------------------


def _logprobs_block(completion: Completion, token_text: TokenText) -> dict[str, Any] | None:
    if completion.logprobs is None:
        return None
    content = []
    for token_id, logprob in zip(completion.token_ids, completion.logprobs, strict=True):
        text = token_text(token_id)
        content.append(
            {
                "token": text,
                "logprob": logprob,
                "bytes": list(text.encode("utf-8")),
                "top_logprobs": [],
            }
        )
    return {"content": content}


def chat_response(
    completions: list[Completion],
    served_name: str,
    logprobs: bool,
    token_text: TokenText = token_id_text,
) -> dict[str, Any]:
    """One conversation's completions in the OpenAI chat-completion schema, plus `token_ids`."""
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": completion.text},
            "finish_reason": completion.finish_reason,
            "logprobs": _logprobs_block(completion, token_text) if logprobs else None,
            "token_ids": list(completion.token_ids),
        }
        for i, completion in enumerate(completions)
    ]
    prompt_tokens = (completions[0].prompt_tokens if completions else None) or 0
    completion_tokens = sum(len(c.token_ids) for c in completions)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
