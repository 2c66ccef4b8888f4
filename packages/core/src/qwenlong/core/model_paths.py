"""Model and tokenizer folders named by the user: local folders only, checked before loading.

qwenlong loads models and tokenizers only from local folders. Handed a path that does not exist,
transformers takes it for a Hugging Face hub name and, offline, retries for about 100 s before
a connectivity error that never mentions the missing folder. So every user-given model or
tokenizer path is checked here first, and the loaders pass `local_files_only=True`, so that a
folder that passes the check but is broken still fails locally, in one line.
"""

from __future__ import annotations

from pathlib import Path

from qwenlong.core.errors import ConfigError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json")
"""A folder holding any of these is one `AutoTokenizer` can load without the hub."""


def check_model_dir(path: str | Path, what: str | None = None) -> Path:
    """`path` as a `Path` when it is a folder with config.json; else one-line `ConfigError`.

    `what` names where the path came from (a config key or option, "model.model", "--model")
    and leads the message when given.
    """
    folder = _existing_folder(path, what)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{_where(path, what)}: not a model folder (no config.json in it)")
    return folder


def check_tokenizer_dir(path: str | Path, what: str | None = None) -> Path:
    """`path` as a `Path` when it is a folder a tokenizer loads from; else one-line `ConfigError`.

    A model folder qualifies, and so does a tokenizer-only folder (tokenizer.json or
    tokenizer_config.json without config.json).
    """
    folder = _existing_folder(path, what)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        files = ", ".join(TOKENIZER_FILES)
        raise ConfigError(f"{_where(path, what)}: not a tokenizer folder (none of {files})")
    return folder


def _existing_folder(path: str | Path, what: str | None) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        hint = f"make a tiny one with: qwenlong models tiny --out {path}"
        raise ConfigError(f"{_where(path, what)}: no such model folder ({hint})")
    return folder


def _where(path: str | Path, what: str | None) -> str:
    return f"{what}: {path}" if what else str(path)
