"""MemAgentConfig: paper defaults, the MemAgent preset, the window check."""

from __future__ import annotations

import pytest

from qwenlong.core.config_loader import load_config_dict
from qwenlong.core.errors import ConfigError
from qwenlong.memagent.config import MemAgentConfig


def test_defaults_are_the_papers_budgets():
    config = MemAgentConfig()
    assert (config.chunk_tokens, config.memory_tokens, config.router.window_tokens) == (
        32768,
        15360,
        262144,
    )


def test_memagent_preset_fills_only_what_is_left_out():
    preset = load_config_dict({"preset": "memagent"}, MemAgentConfig, "x.yaml")
    assert (preset.chunk_tokens, preset.memory_tokens) == (5000, 1024)
    mixed = load_config_dict({"preset": "memagent", "chunk_tokens": 8000}, MemAgentConfig, "x")
    assert (mixed.chunk_tokens, mixed.memory_tokens) == (8000, 1024)


def test_budgets_must_leave_room_in_the_window():
    with pytest.raises(ConfigError, match=r"leaves no room in router\.window_tokens = 4096"):
        load_config_dict(
            {"chunk_tokens": 3000, "memory_tokens": 1000, "router": {"window_tokens": 4096}},
            MemAgentConfig,
            "x.yaml",
        )


def test_every_field_is_documented():
    for model in (MemAgentConfig, type(MemAgentConfig().step), type(MemAgentConfig().router)):
        undocumented = [name for name, f in model.model_fields.items() if not f.description]
        assert undocumented == [], model.__name__


def test_every_run_config_field_is_documented():
    from qwenlong.memagent.run import DatasetInput, DocumentInput, MemAgentRunConfig

    for model in (MemAgentRunConfig, DatasetInput, DocumentInput):
        undocumented = [name for name, f in model.model_fields.items() if not f.description]
        assert undocumented == [], model.__name__
