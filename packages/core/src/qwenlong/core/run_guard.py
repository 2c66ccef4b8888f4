"""Reruns into an existing run folder: the same config resumes, a changed one is refused.

The resumable commands (synth, eval, memagent) keep finished work in their run folder and skip
it on the next run. Run again with a different config, they would keep the old world or the
old model's predictions while RUN/config.yaml claimed the new settings: a wrong result with
exit code 0. `claim_run` therefore compares the new resolved config with the RUN/config.yaml
the folder was made with and refuses a difference in one line naming the dotted keys, unless
the caller asked to start over (`--overwrite`), which removes the previous run's outputs
first. All of it happens under the folder's lock (`qwenlong.core.run_lock`), so no other run
changes the folder between the check and the work.

Keys whose value cannot change a result may be exempted by the command; each exemption is
documented beside it. An exempt pattern matches every key whose dotted path contains it as
consecutive parts ("openai.timeout_s" matches `model.openai.timeout_s` and
`judge.model.openai.timeout_s`), as the training checkpoint's RESUME_MUTABLE_KEYS do.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from qwenlong.core.config_loader import config_to_yaml
from qwenlong.core.errors import ConfigError
from qwenlong.core.run_lock import RunLock
from qwenlong.core.rundir import CONFIG_FILE, RUNDIR_OUTPUTS

TRANSPORT_KEYS: tuple[str, ...] = (
    "openai.max_concurrency",
    "openai.max_retries",
    "openai.backoff_s",
    "openai.timeout_s",
    "openai.api_key_env",
)
"""How requests reach an OpenAI-compatible server, never what is asked: each request carries
its own prompt and seed, so concurrency, retries, backoff, time limits and the key's variable
change when an answer arrives, not which answer. Exempt in every command."""

SHOWN_DIFFERENCES = 8
"""Differing keys named in the refusal; the rest are counted."""


@contextmanager
def claim_run(
    out: Path,
    config: BaseModel,
    outputs: Iterable[str],
    *,
    overwrite: bool,
    exempt: Iterable[str] = TRANSPORT_KEYS,
) -> Iterator[Path]:
    """Hold `out`'s lock for the `with` body, after checking the folder may take this run.

    `outputs` names what the command writes in the folder (file or folder names, glob patterns
    allowed), besides the RunDir's own files. With `overwrite` those are removed and the run
    starts fresh; without it a folder made with a different config is a `ConfigError`.
    """
    with RunLock(out):
        if overwrite:
            remove_outputs(out, [*RUNDIR_OUTPUTS, *outputs])
        else:
            check_same_config(out, config, exempt)
        yield out


def check_same_config(folder: Path, config: BaseModel, exempt: Iterable[str] = ()) -> None:
    """`ConfigError` naming the differing keys if RUN/config.yaml holds another config.

    Both sides go through the same YAML dump and load, so a value compares equal to its own
    written form (paths, tuples, floats). A folder without config.yaml has no run to protect.
    """
    path = folder / CONFIG_FILE
    if not path.is_file():
        return
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(
            f"{path}: unreadable ({type(err).__name__}); pass --overwrite to start over, "
            "or choose another --out"
        ) from None
    now = yaml.safe_load(config_to_yaml(config))
    if not isinstance(saved, Mapping):
        saved = {"<config.yaml>": saved}
    changes = config_differences(flat_config(saved, exempt), flat_config(now, exempt))
    if changes:
        raise ConfigError(
            f"{folder}: config differs from the one this folder was made with ({changes}); "
            "pass --overwrite to start over, or choose another --out"
        )


def flat_config(
    config: BaseModel | Mapping[str, Any], exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """The config as {dotted path: JSON value}, minus the keys matching an `exclude` pattern.

    Lists are indexed like sections (`benchmarks.1.path`), so a change inside one entry names
    that field; an empty section or list is a value of its own. The same flattening as the
    training checkpoint's fingerprint (`qwenlong.rl.checkpoint.flat_config`).
    """
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    patterns = [tuple(entry.split(".")) for entry in exclude]
    flat: dict[str, Any] = {}

    def excluded(path: tuple[str, ...]) -> bool:
        return any(
            path[i : i + len(p)] == p for p in patterns for i in range(len(path) - len(p) + 1)
        )

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if path and excluded(path):
            return
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(item, (*path, str(key)))
        elif isinstance(value, list | tuple) and value and path:
            for i, item in enumerate(value):
                walk(item, (*path, str(i)))
        else:
            flat[".".join(path)] = value

    walk(to_jsonable_python(data), ())
    return flat


def config_differences(
    saved: Mapping[str, Any], now: Mapping[str, Any], limit: int = SHOWN_DIFFERENCES
) -> str:
    """ "key: old -> new, ..." for the keys whose values differ, sorted; "" when none do.

    Values are compared as JSON text, so NaN equals NaN; a key only one side has shows as
    <absent> on the other.
    """
    keys = sorted(k for k in saved.keys() | now.keys() if _text(saved, k) != _text(now, k))
    shown = [f"{k}: {_show(saved, k)} -> {_show(now, k)}" for k in keys[:limit]]
    more = f", and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(shown) + more


def remove_outputs(folder: Path, names: Iterable[str]) -> list[Path]:
    """Delete what a previous run wrote (`names`: file or folder names, or glob patterns);
    anything else in the folder, such as a user's notes, stays. Returns what was removed."""
    removed: list[Path] = []
    for pattern in names:
        for path in sorted(folder.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _text(flat: Mapping[str, Any], key: str) -> str | None:
    return json.dumps(flat[key], sort_keys=True, default=str) if key in flat else None


def _show(flat: Mapping[str, Any], key: str, width: int = 60) -> str:
    text = _text(flat, key)
    if text is None:
        return "<absent>"
    return text if len(text) <= width else text[: width - 3] + "..."
