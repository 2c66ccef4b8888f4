"""`qwenlong serve MODEL_DIR`: a local model behind an OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from qwenlong.core.serve import DEFAULT_MAX_N, DEFAULT_MAX_TOKENS_LIMIT, DEFAULT_READ_TIMEOUT_S


def serve_command(
    model_dir: Path = typer.Argument(..., help="A Hugging Face model directory."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="0 picks a free port."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 or auto."),
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = typer.Option("float32", "--dtype"),
    served_name: str | None = typer.Option(
        None, "--served-name", help="Name clients send as `model` (default: MODEL_DIR as given)."
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Requests decoding together at most."
    ),
    max_n: int = typer.Option(
        DEFAULT_MAX_N, "--max-n", min=1, help="Most completions (n) one request may ask for."
    ),
    max_tokens_limit: int = typer.Option(
        DEFAULT_MAX_TOKENS_LIMIT,
        "--max-tokens-limit",
        min=1,
        help="Most tokens one request may ask to generate; larger requests get a 400.",
    ),
    read_timeout: float = typer.Option(
        DEFAULT_READ_TIMEOUT_S,
        "--read-timeout",
        min=0.1,
        help="Seconds a client may stall while sending a request before it is cut off (408).",
    ),
) -> None:
    """Serve MODEL_DIR with the transformers backend until Ctrl-C."""
    from qwenlong.core.backends import BackendConfig
    from qwenlong.core.backends.config import HFBackendConfig
    from qwenlong.core.model_paths import check_model_dir

    check_model_dir(model_dir)  # before torch is imported: a typo fails at once, locally
    from qwenlong.core.backends.hf import HFChatModel
    from qwenlong.core.serve import make_server, serve_forever

    config = BackendConfig(
        backend="hf",
        model=str(model_dir),
        hf=HFBackendConfig(device=device, dtype=dtype, batch_size=batch_size),
    )
    model = HFChatModel.from_config(config)
    try:
        server = make_server(
            model,
            host,
            port,
            served_name or str(model_dir),
            max_batch=batch_size,
            token_text=lambda token_id: model.tokenizer.decode([token_id]),
            max_n=max_n,
            max_tokens_limit=max_tokens_limit,
            read_timeout_s=read_timeout,
        )
        typer.echo(f"serving {server.served_name} at {server.url}")
        serve_forever(server)
    finally:
        model.close()


def register(app: typer.Typer) -> None:
    """Add `serve` to the CLI."""
    app.command("serve")(serve_command)
