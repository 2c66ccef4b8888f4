"""Waiting on Ray results with the project's errors.

A worker raising `QwenlongError` (a bad model directory, a tensor of the wrong shape) reaches
the driver wrapped in a `RayTaskError` whose text is the remote traceback; the user should see
the one line the worker raised instead. A worker process that died is an environment problem,
reported as a `BackendError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from qwenlong.core.errors import BackendError, ConfigError, QwenlongError, first_line


def actor_options(
    given: Sequence[dict[str, Any]] | None, count: int, num_cpus: float, num_gpus: float, what: str
) -> list[dict[str, Any]]:
    """Ray options of `count` actors: `given` (one dict each, e.g. placement-group bundles), or
    the same CPU/GPU request for all; a count mismatch is one line naming `what`."""
    if given is None:
        return [{"num_cpus": num_cpus, "num_gpus": num_gpus} for _ in range(count)]
    if len(given) != count:
        raise ConfigError(f"{what}: {len(given)} actor options for {count} actors")
    return list(given)


def ray_get(refs: Any) -> Any:
    """`ray.get` of one object ref or a list of them, re-raising a worker's QwenlongError as
    itself and a dead actor as a BackendError. With a list, every result is waited for before
    the first error is raised, so no failed task is left unobserved (Ray would log it)."""
    if not isinstance(refs, list):
        return _get_one(refs)
    results, first_error = [], None
    for ref in refs:
        try:
            results.append(_get_one(ref))
        except Exception as err:
            first_error = first_error or err
    if first_error is not None:
        raise first_error
    return results


def _get_one(ref: Any) -> Any:
    try:
        return ray.get(ref)
    except RayTaskError as err:
        if isinstance(err.cause, QwenlongError):
            raise err.cause from None
        raise
    except RayActorError as err:
        raise BackendError(f"a Ray worker died: {first_line(err)}") from None
