"""Ray for the duration of a run: attach to a cluster, or start a local Ray in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from qwenlong.rl.config import RayConfig


@contextmanager
def ray_session(config: RayConfig) -> Iterator[None]:
    """Ray for the duration: attach to `address`, or start a local Ray in this process.

    An already initialised Ray (a test fixture, a notebook) is used as is and left running;
    a Ray started here is shut down on exit. Without Ray (`enabled: false`), nothing.
    """
    if not config.enabled:
        yield
        return
    import ray

    _keep_workers_in_this_environment()
    started = False
    if not ray.is_initialized():
        if config.address is not None:
            ray.init(address=config.address, log_to_driver=False)
        else:
            ray.init(num_cpus=config.num_cpus, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        yield
    finally:
        if started:
            ray.shutdown()


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
