"""Typed, self-documenting configuration.

Every component owns a `ConfigModel` subclass: frozen, unknown keys forbidden, each field
documented (attribute docstrings) with what it does and where its default comes from.
Loading YAML into these models, `--set a.b=value` overrides and writing the resolved config
live in `qwenlong.core.config_loader`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """Base class for every config section."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
