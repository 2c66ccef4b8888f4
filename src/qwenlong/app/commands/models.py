"""`qwenlong models`: build the models the CPU recipe and the tests run on.

`qwenlong models tiny --out DIR` writes the tiny random Qwen3-MoE with its locally trained
tokenizer (`qwenlong.core.tiny_model`); options left unset keep `TinyModelConfig`'s defaults.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from qwenlong.core.errors import ConfigError

models_app = typer.Typer(
    name="models",
    help="Build local models (the tiny Qwen3-MoE for CPU runs and tests).",
    no_args_is_help=True,
)


def tiny_overrides(**options: float | None) -> dict[str, float]:
    """The shape options the user actually gave, keyed by `TinyModelConfig` field."""
    return {key: value for key, value in options.items() if value is not None}


@models_app.command("tiny")
def tiny_command(
    out: Path = typer.Option(..., "--out", help="Directory to write (must be new or empty)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the weights and the generated corpus."),
    corpus: list[Path] | None = typer.Option(
        None,
        "--corpus",
        help="File to train the tokenizer on (repeatable): UTF-8 text, or a documents .parquet "
        "such as a synth run's corpus/documents.parquet.",
    ),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="Default 2048."),
    hidden_size: int | None = typer.Option(None, "--hidden-size", help="Default 64."),
    num_layers: int | None = typer.Option(None, "--num-layers", help="Default 2."),
    num_heads: int | None = typer.Option(None, "--num-heads", help="Default 4."),
    num_kv_heads: int | None = typer.Option(None, "--num-kv-heads", help="Default 2."),
    head_dim: int | None = typer.Option(None, "--head-dim", help="Default 16."),
    rope_theta: float | None = typer.Option(None, "--rope-theta", help="Default 1e7."),
    num_experts: int | None = typer.Option(None, "--num-experts", help="Default 8."),
    experts_per_token: int | None = typer.Option(None, "--experts-per-token", help="Default 2."),
    max_position_embeddings: int | None = typer.Option(
        None, "--max-position-embeddings", help="Default 131072."
    ),
    learn_prompts: bool = typer.Option(
        False,
        "--learn-prompts",
        help="Also train the tokenizer on the project's prompt templates (single pass, memory "
        "agent), so their words become whole tokens as in a real model's vocabulary.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    """Build a tiny random Qwen3-MoE with a locally trained tokenizer; print its path and size."""
    from qwenlong.app.prompt_corpus import prompt_corpus
    from qwenlong.core.tiny_model import TinyModelConfig, build_tiny_model, count_parameters

    fields = tiny_overrides(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        rope_theta=rope_theta,
        num_experts=num_experts,
        experts_per_token=experts_per_token,
        max_position_embeddings=max_position_embeddings,
    )
    try:
        config = TinyModelConfig(seed=seed, **fields)
    except ValidationError as err:
        first = err.errors()[0]
        cause = first.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else first["msg"]
        where = "".join(f"{part}: " for part in first["loc"])
        raise ConfigError(f"models tiny: {where}{message}") from None
    extra = prompt_corpus() if learn_prompts else []
    path = build_tiny_model(out, config, corpus or None, overwrite=overwrite, extra_texts=extra)
    typer.echo(f"{path}\t{count_parameters(path):,} parameters")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(models_app)
