"""`qwenlong generate`: one prompt through any chat-model backend, completions to stdout."""

from __future__ import annotations

import sys
from typing import Literal

import typer
from pydantic import ValidationError

from qwenlong.core.backends import BackendConfig
from qwenlong.core.errors import ConfigError
from qwenlong.core.interfaces import SamplingParams

DEFAULTS = SamplingParams()
"""The command's sampling defaults are the project's (RECIPE.md 2, 4)."""


def build_backend_config(
    backend: str,
    model: str,
    base_url: str | None = None,
    max_retries: int | None = None,
    timeout_s: float | None = None,
) -> BackendConfig:
    """A `BackendConfig` from command-line values; options left unset keep the config defaults.

    Pydantic's complaint about a bad value becomes one `ConfigError` line naming the option.
    """
    openai = {
        key: value
        for key, value in {
            "base_url": base_url,
            "max_retries": max_retries,
            "timeout_s": timeout_s,
        }.items()
        if value is not None
    }
    try:
        return BackendConfig(backend=backend, model=model, openai=openai)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"generate options: {where}: {first['msg']}") from err


def read_prompt(prompt: str) -> str:
    """The prompt argument, or standard input when it is `-`."""
    return sys.stdin.read() if prompt == "-" else prompt


def format_completions(texts: list[str]) -> str:
    """One completion as it is; several numbered `[1] ...`, `[2] ...`, one per block."""
    if len(texts) == 1:
        return texts[0]
    return "\n".join(f"[{i}] {text}" for i, text in enumerate(texts, start=1))


def generate_command(
    prompt: str = typer.Argument(..., help="The user message; '-' reads it from standard input."),
    model: str = typer.Option(
        ..., "--model", help="Model directory (hf, vllm) or the served model name (openai)."
    ),
    backend: Literal["hf", "openai", "vllm"] = typer.Option("hf", "--backend"),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible server root including /v1 (openai backend)."
    ),
    system: str | None = typer.Option(None, "--system", help="A system message to put first."),
    max_new_tokens: int = typer.Option(DEFAULTS.max_new_tokens, "--max-new-tokens", min=1),
    temperature: float = typer.Option(
        DEFAULTS.temperature, "--temperature", min=0.0, help="0 decodes greedily."
    ),
    top_p: float = typer.Option(DEFAULTS.top_p, "--top-p", min=0.0, max=1.0),
    n: int = typer.Option(1, "--n", min=1, help="Completions to sample; numbered when above 1."),
    seed: int | None = typer.Option(None, "--seed"),
    stop: list[str] = typer.Option([], "--stop", help="Stop string; repeat for several."),
    max_retries: int | None = typer.Option(
        None, "--max-retries", help="openai backend: retries before giving up (config default 5)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="openai backend: seconds per request (config default 600)."
    ),
) -> None:
    """Generate completions for PROMPT and print them."""
    from qwenlong.app.input_checks import check_backend
    from qwenlong.core.backends import make_chat_model

    config = build_backend_config(backend, model, base_url, max_retries, timeout)
    check_backend(config, "--model")
    conversation = [{"role": "user", "content": read_prompt(prompt)}]
    if system is not None:
        conversation.insert(0, {"role": "system", "content": system})
    sampling = SamplingParams(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        n=n,
        stop=tuple(stop),
        seed=seed,
    )
    chat_model = make_chat_model(config)
    try:
        [completions] = chat_model.generate([conversation], sampling)  # type: ignore[list-item]
    finally:
        chat_model.close()
    typer.echo(format_completions([completion.text for completion in completions]))


def register(app: typer.Typer) -> None:
    """Add `generate` to the CLI."""
    app.command("generate")(generate_command)
