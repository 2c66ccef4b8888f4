"""Loading the target tokenizer, the unit every length in the project is counted in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwenlong.core.errors import ConfigError, first_line


def load_tokenizer(path: str | Path, what: str = "tokenizer") -> Any:
    """An HF tokenizer from a local model/tokenizer folder (or a hub name when reachable).

    A path that does not load is a one-line `ConfigError` naming `what` (the config key) and
    the path, raised before any model work starts.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{what}: {str(path)!r} could not be loaded: {first_line(err)}") from err
