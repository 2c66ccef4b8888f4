"""Colocated vLLM engines of any tensor-parallel size beside the policy ranks: one Ray
placement group of a bundle per training GPU, shared by both.

Why a placement group rather than fractional GPU requests alone: vLLM's CUDA IPC weight
transfer hands each engine worker the handle of the policy copy on *its own* GPU (keyed by the
GPU's UUID), so every engine worker must sit on a GPU that holds a policy rank; and the workers
of a tensor-parallel engine are not ours to place: vLLM's Ray executor starts them. The group
fixes both:

- bundle i = {GPU: 1, CPU: policy + engine CPUs}, one per policy rank;
- policy rank i runs in bundle i and asks `policy.num_gpus_per_worker` of its GPU (each copy,
  when a KL reference policy runs too);
- engine e is an actor in bundle e x tp. With tp 1 it is its own GPU worker and asks
  `gpu_share`. With tp > 1 it asks no GPU and is started with `capture_child_tasks`, so vLLM's
  Ray executor (`distributed_executor_backend: ray`) finds this group, and with vLLM's
  `VLLM_RAY_BUNDLE_INDICES` (bundles e x tp ... e x tp + tp - 1) and `VLLM_RAY_PER_WORKER_GPUS`
  (`gpu_share`) its tp workers land beside policy ranks e x tp ... e x tp + tp - 1.

Ray accounts GPU fractions, it does not enforce memory: the memory itself is vLLM's
`gpu_memory_utilization` (= `gpu_share`) and the policy's, planned by `qwenlong plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qwenlong.core.errors import ConfigError

READY_SECONDS = 120.0
"""How long the group may wait for its GPUs before the run is refused (ours)."""


@dataclass(frozen=True)
class ColocatedLayout:
    """What colocation needs to know of a run (`TrainConfig.colocated_layout`)."""

    policy_ranks: int
    engines: int
    tensor_parallel_size: int
    gpu_share: float
    """Of each GPU, for its engine worker (`rollout.vllm.gpu_share`)."""
    policy_gpus: float
    """Of each GPU, for each policy copy (`policy.num_gpus_per_worker`)."""
    policy_cpus: float
    engine_cpus: float
    copies: int = 1
    """Policies per GPU: 2 with the KL reference policy."""

    def check(self) -> None:
        """Refuse a layout that cannot put one engine worker beside each policy rank."""
        engine_gpus = self.engines * self.tensor_parallel_size
        if engine_gpus != self.policy_ranks:
            raise ValueError(
                f"rollout.vllm.placement colocated puts one engine worker beside each policy "
                f"rank: rollout.num_workers x tensor_parallel_size ({self.engines} x "
                f"{self.tensor_parallel_size} = {engine_gpus}) must equal policy.num_workers "
                f"({self.policy_ranks})"
            )
        wanted = self.copies * self.policy_gpus + self.gpu_share
        if self.policy_gpus <= 0 or wanted > 1 + 1e-9:
            plural = "ies" if self.copies > 1 else "y"
            raise ValueError(
                f"colocated: each GPU holds {self.copies} policy cop{plural} x "
                f"policy.num_gpus_per_worker ({self.policy_gpus:g}) + rollout.vllm.gpu_share "
                f"({self.gpu_share:g}) = {wanted:g}; it must be in (0, 1] with "
                f"policy.num_gpus_per_worker > 0 (e.g. {(1 - self.gpu_share) / self.copies:g})"
            )

    @property
    def bundle_cpus(self) -> float:
        return self.copies * self.policy_cpus + self.engine_cpus


def engine_bundles(engine: int, tensor_parallel_size: int) -> list[int]:
    """The bundles (= policy ranks) whose GPUs engine `engine`'s workers use."""
    first = engine * tensor_parallel_size
    return list(range(first, first + tensor_parallel_size))


class Colocation:
    """The run's placement group and the Ray options of every actor placed in it."""

    def __init__(self, group: Any, layout: ColocatedLayout) -> None:
        self.group, self.layout = group, layout

    @classmethod
    def create(cls, layout: ColocatedLayout) -> Colocation:
        """Reserve one bundle per policy rank, room for its policy copies and its engine
        worker; refused in one line if Ray cannot place it in `READY_SECONDS`."""
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group

        cpus = layout.bundle_cpus
        bundles = [{"GPU": 1.0, "CPU": cpus} for _ in range(layout.policy_ranks)]
        group = placement_group(bundles, strategy="PACK")
        ready, _ = ray.wait([group.ready()], timeout=READY_SECONDS)
        if not ready:
            remove_placement_group(group)
            have = ray.cluster_resources()
            raise ConfigError(
                f"colocated placement: {len(bundles)} bundles of 1 GPU + {cpus:g} CPUs could not "
                f"be placed in {READY_SECONDS:g} s (Ray has {have.get('GPU', 0):g} GPUs, "
                f"{have.get('CPU', 0):g} CPUs)"
            )
        return cls(group, layout)

    def rank_options(self, rank: int) -> dict[str, Any]:
        """Ray options of policy rank `rank` (bundle `rank`)."""
        return {
            "num_cpus": self.layout.policy_cpus,
            "num_gpus": self.layout.policy_gpus,
            "scheduling_strategy": self._strategy(rank, capture=False),
        }

    def engine_options(self, engine: int) -> dict[str, Any]:
        """Ray options of engine `engine`'s actor; with tensor parallel, the environment that
        sends vLLM's workers to its bundles."""
        layout = self.layout
        bundles = engine_bundles(engine, layout.tensor_parallel_size)
        if layout.tensor_parallel_size == 1:
            return {
                "num_cpus": layout.engine_cpus,
                "num_gpus": layout.gpu_share,
                "scheduling_strategy": self._strategy(bundles[0], capture=False),
            }
        env = {
            "VLLM_RAY_BUNDLE_INDICES": ",".join(map(str, bundles)),
            "VLLM_RAY_PER_WORKER_GPUS": str(layout.gpu_share),
        }
        return {
            "num_cpus": layout.engine_cpus,
            "num_gpus": 0,
            "scheduling_strategy": self._strategy(bundles[0], capture=True),
            "runtime_env": {"env_vars": env},
        }

    def remove(self) -> None:
        """Give the bundles back (after every actor in them has ended)."""
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.group)

    def _strategy(self, bundle: int, *, capture: bool) -> Any:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(
            placement_group=self.group,
            placement_group_bundle_index=bundle,
            placement_group_capture_child_tasks=capture,
        )
