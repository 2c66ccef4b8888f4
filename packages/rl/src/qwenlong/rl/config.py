"""The training config: one YAML file describes a whole RL run (`qwenlong train CONFIG.yaml`).

Each section belongs to the module that uses it (sampler, rewards, advantages, losses, masks,
AEPO, torch policy); this file only assembles them and adds what the loop itself needs: the
model, the data, rollout settings, the SFT warm start, the length stages, checkpointing,
held-out evaluation and Ray. Defaults are the paper's where it publishes them (RECIPE.md
section 2: G = 8, 128 prompts per batch, constant lr 2e-6, temperature 0.7, top-p 0.95, no KL,
one update per batch); every other default says it is ours.

Two settings have one source of truth here although the policy also needs them: the sampling
temperature (`rollout.temperature`; the policy must divide its logits by the same value or the
on-policy ratio is not 1) and the loss (`loss`). Setting them under `policy.torch` is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field, field_validator, model_validator

from qwenlong.core.backends.config import BackendConfig, HFBackendConfig
from qwenlong.core.config import ConfigModel
from qwenlong.core.prompt_set import PromptSet
from qwenlong.core.registry import Registry
from qwenlong.core.rundir import LoggingConfig
from qwenlong.memagent.config import MemAgentConfig
from qwenlong.rl.advantages import AdvantageConfig
from qwenlong.rl.aepo import AepoConfig
from qwenlong.rl.collapse import CollapseConfig
from qwenlong.rl.interfaces import Policy, Rollout, RolloutEngine
from qwenlong.rl.losses import LossConfig
from qwenlong.rl.masks import NegativeClipConfig
from qwenlong.rl.megatron.config import MegatronPolicyConfig
from qwenlong.rl.overlong import OverlongConfig
from qwenlong.rl.prompting import PromptBuilder
from qwenlong.rl.rewards import RewardConfig
from qwenlong.rl.rollout.colocation import ColocatedLayout, Colocation
from qwenlong.rl.rollout.vllm_config import VLLMRolloutConfig
from qwenlong.rl.rollout_correction import RolloutCorrectionConfig
from qwenlong.rl.sampler import SamplerConfig
from qwenlong.rl.stages import StageConfig
from qwenlong.rl.torch_policy import TorchPolicyConfig
from qwenlong.rl.weight_sync import WeightSyncConfig

# The choices `policy.backend`, `rollout.backend` and `rollout.kind` name, registered lazily
# ("module:function") beside the config that checks them, so checking a name imports neither
# torch distributed, Ray, Megatron nor vLLM. A test or an extension adds its own with `add`.

PolicyFactory = Callable[["TrainConfig", str, float | None, Colocation | None], Policy]
"""(run config, model directory as the workers see it, learning rate or None for the
config's, the colocated placement group or None) -> the started policy."""
POLICY_BACKENDS: Registry[PolicyFactory] = Registry("policy backend")
POLICY_BACKENDS.add_lazy("torch", "qwenlong.rl.torch_rank:start_torch_policy")
POLICY_BACKENDS.add_lazy("megatron", "qwenlong.rl.megatron.policy:start_megatron_policy")

EngineFactory = Callable[["TrainConfig", str, Colocation | None], RolloutEngine]
"""(run config, model directory as the workers see it, the colocated placement group or None)
-> the started rollout engines."""
ROLLOUT_BACKENDS: Registry[EngineFactory] = Registry("rollout backend")
ROLLOUT_BACKENDS.add_lazy("hf", "qwenlong.rl.rollout.hf_group:start_hf_engines")
ROLLOUT_BACKENDS.add_lazy("vllm", "qwenlong.rl.rollout.vllm_group:start_vllm_engines")

RolloutFactory = Callable[["RolloutConfig", RolloutEngine, PromptBuilder], Rollout]
"""(rollout config, engine, prompt builder) -> the bound rollout kind
(qwenlong.rl.rollout.registry.make_rollout)."""
ROLLOUTS: Registry[RolloutFactory] = Registry("rollout kind")
ROLLOUTS.add_lazy("single_pass", "qwenlong.rl.rollout.single_pass:SinglePassRollout")
ROLLOUTS.add_lazy("memagent", "qwenlong.rl.rollout.memagent:MemAgentRollout")


class DataConfig(ConfigModel):
    """Where the training prompts come from and which of them are held out."""

    train: tuple[str, ...] = Field(min_length=1)
    """Parquet files or folders of `TaskSample`s (qwenlong.core.dataset_io), concatenated."""
    heldout: str | None = None
    """A separate held-out file; None splits the held-out set off `train` by id hash."""
    heldout_fraction: float = Field(default=0.0, ge=0, lt=1)
    """With `heldout` None: the share of `train` samples held out, chosen by a hash of the
    sample id (stable whatever the file order); 0 holds nothing out."""


class RolloutConfig(ConfigModel):
    """How responses are generated."""

    kind: str = "single_pass"
    """A rollout kind (`ROLLOUTS` above). single_pass: one prompt with the
    (middle-truncated) document, one response. memagent: the memory agent reads the document
    chunk by chunk; each memory update and the final answer is a training sequence carrying
    its trajectory's advantage (RECIPE.md section 3, qwenlong.rl.rollout.memagent)."""
    backend: str = "hf"
    """The engines that generate (`ROLLOUT_BACKENDS` above): hf (transformers, CPU or GPU) or
    vllm (vLLM engines on GPUs, settings under `vllm`; the paper's lengths need it)."""
    memagent: MemAgentConfig = MemAgentConfig()
    """Chunk and memory budgets, update-step sampling and parsing of the memory agent, used
    when `kind` is memagent (paper's Memory-RL: 32K chunks, 15K memory). Its router is not
    used: every RL sample goes through the agent."""
    group_size: int = Field(default=8, ge=1)
    """G, responses per prompt (the GRPO group). Paper: 8."""
    temperature: float = Field(default=0.7, gt=0)
    """Sampling temperature, also the temperature of the policy's log-probs. Paper: 0.7."""
    top_p: float = Field(default=0.95, gt=0, le=1)
    """Nucleus sampling mass. Paper: 0.95."""
    max_input_tokens: int = Field(default=20480, ge=1)
    """Prompt limit when `stages` is empty (the document is middle-truncated to fit). Paper
    Stage-1: 20K."""
    max_new_tokens: int = Field(default=12288, ge=1)
    """Response limit when `stages` is empty. Paper Stage-1: 12K."""
    num_workers: int = Field(default=1, ge=1)
    """Rollout engines (Ray actors); the batch's prompts are divided among them."""
    num_cpus_per_worker: float = Field(default=1.0, ge=0)
    """CPUs each engine reserves in Ray (fractions allowed). Our choice."""
    num_gpus_per_worker: float = Field(default=0.0, ge=0)
    """GPUs each `hf` engine reserves in Ray (0 on CPU machines); vLLM engines take theirs
    from `vllm.placement`."""
    hf: HFBackendConfig = HFBackendConfig(torch_threads=1)
    """Settings of the `hf` rollout engines (device, dtype, decode batch, threads). One torch
    thread each by default, since engines and policy workers share the machine's cores."""
    vllm: VLLMRolloutConfig = VLLMRolloutConfig()
    """Settings of the `vllm` rollout engines (placement, GPU share, tensor parallel,
    log-probs mode)."""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return ROLLOUTS.check(value)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return ROLLOUT_BACKENDS.check(value)


class PolicyConfig(ConfigModel):
    """The model being trained."""

    backend: str = "torch"
    """The code that trains it (`POLICY_BACKENDS` / `ROLLOUT_BACKENDS` above): torch (an HF model in data parallel,
    CPU or GPU) or megatron (Megatron-Core: expert, tensor and data parallel, for the
    paper-scale runs; settings under `megatron`)."""
    num_workers: int = Field(default=1, ge=1)
    """Policy ranks (Ray actors; gloo on CPU, NCCL on GPU); all data parallel for torch."""
    num_cpus_per_worker: float = Field(default=1.0, ge=0)
    """CPUs each rank reserves in Ray (fractions allowed). Our choice."""
    num_gpus_per_worker: float = Field(default=0.0, ge=0)
    """GPUs each rank reserves in Ray (0 on CPU machines)."""
    torch: TorchPolicyConfig = TorchPolicyConfig(torch_threads=1)
    """Optimizer (lr 2e-6 constant: the paper's), micro-batching and numerics of each rank.
    Its `temperature` and `loss` are filled from `rollout.temperature` and `loss`."""
    megatron: MegatronPolicyConfig = MegatronPolicyConfig(torch_threads=1)
    """Parallel layout, MoE routing, packing and optimizer of the Megatron-Core backend
    (`backend: megatron`); its `temperature` is filled from `rollout.temperature`."""

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        return POLICY_BACKENDS.check(value)


class SFTConfig(ConfigModel):
    """The SFT warm start: cross-entropy on the synthesized answers before RL (qwenlong.rl.sft).

    Not in the paper (its base model is already competent); tiny CPU models need it to produce
    anything a reward can grade. All defaults are ours.
    """

    steps: int = Field(ge=1)
    """Optimizer steps."""
    batch_size: int = Field(default=16, ge=1)
    """Prompts per step, drawn with the task-balanced sampler of the first stage's data."""
    lr: float = Field(default=1e-3, gt=0)
    """AdamW learning rate (constant). Far above RL's 2e-6: a random tiny model starts from
    nothing."""
    max_input_tokens: int | None = Field(default=None, ge=1)
    """Prompt limit; None takes the first stage's."""
    think: bool = False
    """Prefix the target with an empty `<think></think>` block, for thinking models whose
    reward reads the text after `</think>` (see qwenlong.rl.sft)."""
    log_every: int = Field(default=10, ge=1)
    """Write a line to RUN/sft/metrics.jsonl every this many steps."""
    control: bool = False
    """After RL, also continue SFT from the warm-start weights for the wall time RL took and
    evaluate it on the held-out set: the control showing what RL adds over more SFT."""


class HeldoutConfig(ConfigModel):
    """Held-out evaluation: before RL, every `every` steps, after RL, and after the SFT control.

    All defaults are ours except where the paper's evaluation setting is named.
    """

    size: int = Field(default=0, ge=0)
    """Held-out prompts evaluated (the first ones by id hash); 0 turns held-out evaluation
    off."""
    temperature: float = Field(default=0.0, ge=0)
    """Sampling temperature of the responses; 0 is greedy (one deterministic response per
    prompt). The paper evaluates at 0.7 with top-p 0.95 (RECIPE.md section 4); top-p is
    `rollout.top_p`."""
    samples: int = Field(default=1, ge=1)
    """Sampled responses per prompt; the prompt's reward is their mean. More samples shrink
    the sampling noise of each prompt's reward, not the spread between prompts. Needs
    `temperature` > 0."""
    greedy: bool = False
    """With `temperature` > 0, also evaluate one greedy response per prompt and report it
    beside the sampled figure (`heldout_greedy_*` in the summary): the sampled reward rises
    both when the policy learns and when it only grows more certain, the greedy one only
    when its most likely answer changes."""
    every: int | None = Field(default=None, ge=1)
    """Also evaluate every this many steps; None: only before the first and after the last."""

    @model_validator(mode="after")
    def _check(self) -> HeldoutConfig:
        if self.temperature == 0 and self.samples > 1:
            raise ValueError(
                f"samples is {self.samples} but temperature is 0: greedy responses are all the "
                "same; set a temperature or samples: 1"
            )
        if self.temperature == 0 and self.greedy:
            raise ValueError("greedy: true needs temperature > 0 (at 0 the main figure is greedy)")
        return self


class RayConfig(ConfigModel):
    """Where the actors run."""

    enabled: bool = True
    """Run rollout engines, reward scoring and policy ranks as Ray actors. False runs them all
    in the driver process (same loop, no actors): for debugging and fast tests."""
    address: str | None = None
    """An existing Ray cluster to attach to ("auto", "ray://host:10001"); None starts a local
    Ray inside this process, stopped when training ends."""
    num_cpus: int | None = Field(default=None, ge=1)
    """CPUs of the local Ray (None: all of the machine's); ignored when attaching."""
    num_gpus: int | None = Field(default=None, ge=0)
    """GPUs of the local Ray (None: those it detects); ignored when attaching. Ray only counts
    them, so declaring GPUs a machine lacks tests GPU placement on a CPU (ours)."""


class TrainConfig(ConfigModel):
    """An RL run: model, data, algorithm, stages, checkpoints, evaluation, Ray."""

    model: str
    """HF model directory of the initial policy (also the rollout engines' starting weights)."""
    data: DataConfig
    """Training and held-out prompts."""
    seed: int = 0
    """Every random draw (sampling, shuffles, rollouts) is derived from (seed, step)."""
    steps: int | None = Field(default=None, ge=1)
    """Optimizer steps when `stages` is empty (one stage named "main"); with stages, each
    stage sets its own and this must be null."""
    stages: tuple[StageConfig, ...] = ()
    """Progressive length stages, run in order (qwenlong.rl.stages)."""
    updates_per_batch: int = Field(default=1, ge=1)
    """Optimizer updates per rollout batch, each on a disjoint mini-batch of its sequences.
    1 (the paper): strictly on-policy, the ratio is 1 and clipping is inert. More makes the
    later updates off-policy: old log-probs are taken before the first, and clipping acts."""
    sampler: SamplerConfig = SamplerConfig()
    """Task-balanced prompt sampling; `batch_size` prompts per step (paper: 128)."""
    rollout: RolloutConfig = RolloutConfig()
    """Generation settings."""
    reward: RewardConfig = RewardConfig()
    """Rule reward, judge where it fails."""
    judge: BackendConfig | None = None
    """The judge model when `reward.use_judge` (the paper: gpt-oss-120b); None: no judge."""
    prompts: PromptSet = PromptSet()
    """Prompt name -> template file (relative to the working directory, like every path here);
    names left out use the project's wording, the one evaluation uses: single_pass and
    single_pass_choice (rollout prompts), judge (reward judge), memagent_update,
    memagent_final, memagent_final_choice, memagent_query_split (`rollout.kind: memagent`).
    Files are checked on load. Ours."""
    advantage: AdvantageConfig = AdvantageConfig()
    """Advantage estimator (Eq.7 by default)."""
    loss: LossConfig = LossConfig()
    """Policy loss, ratio clipping, KL (beta 0: the paper), token-level aggregation (Eq.4)."""
    rollout_correction: RolloutCorrectionConfig = RolloutCorrectionConfig()
    """Truncated importance sampling for the engine/trainer mismatch, off by default (ours;
    the mismatch itself is logged every step)."""
    negative_clip: NegativeClipConfig = NegativeClipConfig()
    """Negative-gradient clipping (Eq.8-9), off by default."""
    aepo: AepoConfig = AepoConfig()
    """Adaptive entropy control (Eq.11)."""
    overlong: OverlongConfig = OverlongConfig()
    """DAPO's overlong filtering and soft overlong punishment, both off by default (ours)."""
    collapse: CollapseConfig = CollapseConfig()
    """Collapse detection over each step's record, and rollback or stop on a trip (ours)."""
    policy: PolicyConfig = PolicyConfig()
    """Policy ranks and their optimizer."""
    weight_sync: WeightSyncConfig = WeightSyncConfig()
    """How the policy's weights reach the rollout engines after each update."""
    sft: SFTConfig | None = None
    """SFT warm start before RL; None starts RL from `model` directly."""
    checkpoint_every: int | None = Field(default=50, ge=1)
    """Save a checkpoint every this many steps (and always after the last); None only at the
    end. Our choice."""
    keep_checkpoints: int = Field(default=2, ge=1)
    """Newest checkpoints kept; older ones are deleted. Our choice."""
    heldout: HeldoutConfig = HeldoutConfig()
    """Held-out evaluation: how many prompts, at which temperature, how many responses each,
    how often (qwenlong.rl.heldout). Off by default."""
    logging: LoggingConfig = LoggingConfig()
    """TensorBoard / wandb mirrors of RUN/metrics.jsonl."""
    ray: RayConfig = RayConfig()
    """Where the actors run."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.stages and self.steps is not None:
            raise ValueError("set either steps (one stage) or stages, not both")
        if not self.stages and self.steps is None:
            raise ValueError("steps is required when no stages are listed")
        names = [stage.name for stage in self.stages]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"stage names {', '.join(repeated)} appear more than once")
        first = self.stages[0] if self.stages else None
        retro = first.data.retrospective if first is not None else None
        previous = retro is not None and retro.measure == "previous_rollouts"
        if first is not None and previous and first.data.pass_rates is None:
            raise ValueError(
                f"stage {first.name!r} reads data.retrospective's pass rates from the previous "
                "stage's rollouts but has none; set its data.pass_rates or measure: pre_inference"
            )
        owned = {"temperature": "rollout.temperature", "loss": "loss"}
        for name, where in owned.items():
            if name in self.policy.torch.model_fields_set:
                raise ValueError(f"policy.torch.{name} is set from {where}; set it there")
        if "temperature" in self.policy.megatron.model_fields_set:
            raise ValueError("policy.megatron.temperature is set from rollout.temperature")
        if self.heldout.size and self.data.heldout is None and not self.data.heldout_fraction:
            raise ValueError(
                "heldout.size > 0 needs held-out prompts: set data.heldout or data.heldout_fraction"
            )
        if not self.ray.enabled:
            for section in ("policy", "rollout"):
                workers = getattr(self, section).num_workers
                if workers != 1:
                    raise ValueError(
                        f"{section}.num_workers is {workers} but ray.enabled is false; "
                        "several workers need Ray"
                    )
        if self.reward.use_judge and self.judge is None:
            raise ValueError("reward.use_judge is true but judge (a backend config) is null")
        layout = self.colocated_layout()
        if layout is not None:
            layout.check()
        return self

    def colocated_layout(self) -> ColocatedLayout | None:
        """The placement of vLLM engines on the policy's GPUs (qwenlong.rl.rollout.colocation);
        None unless the run puts colocated vLLM engines on Ray."""
        vllm = self.rollout.vllm
        if not (self.ray.enabled and self.rollout.backend == "vllm"):
            return None
        if vllm.placement != "colocated":
            return None
        return ColocatedLayout(
            policy_ranks=self.policy.num_workers,
            engines=self.rollout.num_workers,
            tensor_parallel_size=vllm.tensor_parallel_size,
            gpu_share=vllm.gpu_share,
            policy_gpus=self.policy.num_gpus_per_worker,
            policy_cpus=self.policy.num_cpus_per_worker,
            engine_cpus=self.rollout.num_cpus_per_worker,
            copies=2 if self.loss.kl_beta > 0 else 1,
        )

    def stage_list(self) -> tuple[StageConfig, ...]:
        """The stages to run: `stages`, or one stage "main" from `steps` and the rollout limits."""
        if self.stages:
            return self.stages
        return (
            StageConfig(
                name="main",
                steps=self.steps or 1,
                max_input_tokens=self.rollout.max_input_tokens,
                max_output_tokens=self.rollout.max_new_tokens,
            ),
        )

    def policy_config(self, lr: float | None = None) -> TorchPolicyConfig:
        """The torch policy's config with the run's temperature and loss (and `lr` if given)."""
        update = {"temperature": self.rollout.temperature, "loss": self.loss}
        if lr is not None:
            update["lr"] = lr
        return self.policy.torch.model_copy(update=update)
