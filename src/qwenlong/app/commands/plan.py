"""`qwenlong plan CONFIG.yaml [--gpu NAME] [--stage NAME] [--model-config FILE.json] [--set k=v]`.

Prints, for each length stage of a training config, the memory one policy GPU needs under
`policy.megatron` on `policy.num_workers` GPUs, and the FLOPs and tokens of one step
(qwenlong.rl.megatron.memory_plan). Reads only the model's config.json, so it runs on a CPU
machine without the weights; `--model-config` names the file when the model is not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from qwenlong.rl.megatron.memory_plan import ModelShape


def _model_shape(model: str, model_config: Path | None) -> ModelShape:
    """The shape in `model_config`, else in the model folder's config.json."""
    from qwenlong.core.errors import ConfigError
    from qwenlong.rl.megatron.memory_plan import ModelShape

    path = model_config or Path(model) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = "" if model_config else " (without the model here, pass --model-config FILE.json)"
        raise ConfigError(f"{path}: no such file{hint}") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read a JSON config ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object")
    return ModelShape.from_hf(data, str(path))


def plan_command(
    config: Path = typer.Argument(
        ..., help="Training YAML (fields: qwenlong.rl.config.TrainConfig)."
    ),
    gpu: str = typer.Option("H100-80GB", "--gpu", help="H100-80GB or H200-141GB."),
    stage: str | None = typer.Option(None, "--stage", help="Plan only this stage."),
    model_config: Path | None = typer.Option(
        None, "--model-config", help="The model's HF config.json, when `model` is not here."
    ),
    vllm_share: float | None = typer.Option(
        None,
        "--vllm-share",
        help="Share of each GPU kept for colocated rollout engines (default: the config's "
        "rollout.vllm.gpu_share when its engines are colocated vLLM, else 0).",
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value."),
) -> None:
    """Memory per policy GPU and compute per step of a Megatron layout, stage by stage."""
    from qwenlong.core.config_loader import load_config
    from qwenlong.core.errors import ConfigError
    from qwenlong.rl.config import TrainConfig
    from qwenlong.rl.megatron.memory_plan import plan_memory

    train = load_config(config, TrainConfig, overrides)
    if vllm_share is None:
        vllm = train.rollout.vllm
        colocated = train.rollout.backend == "vllm" and vllm.placement == "colocated"
        vllm_share = vllm.gpu_share if colocated else 0.0
    shape = _model_shape(train.model, model_config)
    stages = train.stage_list()
    if stage is not None:
        stages = tuple(s for s in stages if s.name == stage)
        if not stages:
            known = ", ".join(s.name for s in train.stage_list())
            raise ConfigError(f"{config}: no stage {stage!r}; stages: {known}")
    for i, each in enumerate(stages):
        sequence = each.max_input_tokens + each.max_output_tokens
        plan = plan_memory(
            shape,
            train.policy.megatron,
            train.policy.num_workers,
            sequence=sequence,
            tokens_per_step=train.sampler.batch_size * train.rollout.group_size * sequence,
            gpu=gpu,
            vllm_share=vllm_share,
        )
        if i:
            typer.echo()
        limits = f"{each.max_input_tokens:,} input + {each.max_output_tokens:,} output tokens"
        typer.echo(f"stage {each.name}: {limits}")
        typer.echo("\n".join(f"  {line}" for line in plan.as_table()))


def register(app: typer.Typer) -> None:
    """Add `plan` to the CLI."""
    app.command("plan")(plan_command)
