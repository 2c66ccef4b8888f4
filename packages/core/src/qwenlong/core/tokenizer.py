"""Loading the target tokenizer, the unit every length in the project is counted in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwenlong.core.errors import ConfigError, first_line
from qwenlong.core.model_paths import check_tokenizer_dir


def load_tokenizer(path: str | Path, what: str = "tokenizer") -> Any:
    """An HF tokenizer from a local model or tokenizer folder, never from the hub.

    A path that is not such a folder, or one that does not load, is a one-line `ConfigError`
    naming `what` (the config key) and the path, raised before any model work starts.
    """
    from transformers import AutoTokenizer

    folder = check_tokenizer_dir(path, what)
    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{what}: {str(path)!r} could not be loaded: {first_line(err)}") from err
