"""Ray for the duration of a run: attach to a cluster, or start a local Ray in this process.

A local Ray listens on loopback only: its GCS, raylet, agents and workers all open ports, and
on a shared machine nothing outside it should reach them. It is recorded as it starts, so a
later run can kill what it leaves behind if this driver is killed (`qwenlong.rl.ray_leftovers`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from qwenlong.rl import ray_leftovers
from qwenlong.rl.config import RayConfig

LOOPBACK = "127.0.0.1"


@contextmanager
def ray_session(config: RayConfig) -> Iterator[None]:
    """Ray for the duration: attach to `address`, or start a local Ray in this process.

    An already initialised Ray (a test fixture, a notebook) is used as is and left running;
    a Ray started here is shut down on exit. Without Ray (`enabled: false`), nothing. Before a
    local Ray starts, the processes of local Rays whose drivers were killed are killed.
    """
    if not config.enabled:
        yield
        return
    import ray

    _keep_workers_in_this_environment()
    started = False
    record = None
    if not ray.is_initialized():
        if config.address is not None:
            ray.init(address=config.address, log_to_driver=False)
        else:
            ray_leftovers.reap_leftovers()
            with _node_address_may_be_loopback():
                context = ray.init(
                    num_cpus=config.num_cpus,
                    num_gpus=config.num_gpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    _node_ip_address=LOOPBACK,
                )
            record = ray_leftovers.record(context.address_info["session_dir"])
        started = True
    try:
        yield
    finally:
        if started:
            ray.shutdown()
            ray_leftovers.forget(record)


@contextmanager
def _node_address_may_be_loopback() -> Iterator[None]:
    """Let `ray.init(_node_ip_address="127.0.0.1")` keep the loopback address.

    Ray 2.60 replaces a loopback node address by the machine's routable one (its
    `resolve_ip_for_localhost`) except where local-only clusters are the rule (macOS, Windows:
    `ENABLE_RAY_CLUSTER` false). Switched off while this local Ray starts, every Ray process
    binds 127.0.0.1; afterwards Ray reads the address from the running node, and attaching to a
    real cluster later in the process is unaffected.
    """
    from ray._private import ray_constants

    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous


def _keep_workers_in_this_environment() -> None:
    """Start Ray workers with this interpreter and environment.

    Under `uv run`, Ray's uv hook zips the working directory and starts every worker through
    `uv run` in a copy of it: relative paths break, the upload grows with the run directory,
    and each worker re-resolves the environment. The hook reads its switch once, when ray is
    imported, so the switch is turned off here unless the user set
    RAY_ENABLE_UV_RUN_RUNTIME_ENV explicitly.
    """
    if "RAY_ENABLE_UV_RUN_RUNTIME_ENV" in os.environ:
        return
    from ray._private import ray_constants

    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False
