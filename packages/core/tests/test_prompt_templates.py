"""Prompt templates: `$` syntax, checks on load, empty optional paragraphs, `prompts:` configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwenlong.core.config import ConfigModel
from qwenlong.core.config_loader import load_config
from qwenlong.core.errors import ConfigError
from qwenlong.core.prompt_set import PROMPTS, PromptSet
from qwenlong.core.prompt_templates import PromptSpec, load_template, parse_template

SPEC = PromptSpec(
    "core_test_reading",
    "qwenlong.core",
    "no-such-default.txt",
    required=frozenset({"context", "question"}),
    optional=frozenset({"instruction"}),
)
if SPEC.name not in PROMPTS:
    PROMPTS.add(SPEC.name, SPEC)

VALUES = {"context": "the doc", "question": "Who?", "instruction": ""}


def _template(text: str):
    return parse_template(text, SPEC, "t.txt")


def test_placeholders_dollars_and_braces():
    text = "${question}s about $context cost $$5, or $5 {not a field} $"
    assert _template(text).render(VALUES) == "Who?s about the doc cost $5, or $5 {not a field} $"


def test_values_are_inserted_verbatim_never_re_read():
    values = {**VALUES, "context": "price: $question {x}"}
    assert _template("$context / $question").render(values) == "price: $question {x} / Who?"


def test_an_empty_optional_paragraph_vanishes_with_its_blank_line():
    template = _template("Read $context\n\nQ: $question\n\n$instruction\n\nAnswer.")
    assert template.render(VALUES) == "Read the doc\n\nQ: Who?\n\nAnswer."
    filled = template.render({**VALUES, "instruction": "Be brief."})
    assert filled == "Read the doc\n\nQ: Who?\n\nBe brief.\n\nAnswer."


def test_only_a_lone_optional_placeholder_vanishes():
    inline = _template("$context\n\nNote: $instruction\n\n$question")
    assert inline.render(VALUES) == "the doc\n\nNote: \n\nWho?"  # not alone in its paragraph
    required = _template("$context\n\n$question")
    assert required.render({**VALUES, "context": ""}) == "\n\nWho?"  # required ones never do


def test_unknown_placeholder_is_one_line_naming_file_line_and_name():
    with pytest.raises(ConfigError) as err:
        _template("$context\n$question\nAlso $questoin here")
    message = str(err.value)
    assert "\n" not in message
    assert "t.txt:3: unknown placeholder $questoin in the 'core_test_reading' prompt" in message
    assert "$context, $question (required); $instruction (optional)" in message


def test_missing_required_placeholder_names_it():
    with pytest.raises(ConfigError, match=r"t\.txt: the 'core_test_reading' prompt must use "):
        _template("Only $question here")
    with pytest.raises(ConfigError, match=r"placeholder \$context"):
        _template("Only $question here")


def test_file_loading_drops_the_last_newline_and_reads_crlf(tmp_path: Path):
    path = tmp_path / "reading.txt"
    path.write_bytes(b"Doc: $context\r\nQ: $question\r\n")
    assert load_template(path, SPEC).render(VALUES) == "Doc: the doc\nQ: Who?"
    with pytest.raises(ConfigError, match=r"nope\.txt: no such prompt template"):
        load_template(tmp_path / "nope.txt", SPEC)


def test_an_edited_file_is_read_again(tmp_path: Path):
    path = tmp_path / "reading.txt"
    path.write_text("A $context $question\n")
    assert load_template(path, SPEC).render(VALUES) == "A the doc Who?"
    path.write_text("Changed: $context $question\n")
    os.utime(path, ns=(1, 10**18))  # a new modification time, even on coarse clocks
    assert load_template(path, SPEC).render(VALUES) == "Changed: the doc Who?"


class Experiment(ConfigModel):
    prompts: PromptSet = PromptSet()


def test_prompt_set_is_checked_when_the_config_loads(tmp_path: Path):
    good = tmp_path / "good.txt"
    good.write_text("$context $question\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("$context\n$question $golden\n")
    config = tmp_path / "exp.yaml"
    config.write_text(f"prompts:\n  core_test_reading: {good}\n")
    loaded = load_config(config, Experiment)
    assert loaded.prompts.render("core_test_reading", **VALUES) == "the doc Who?"

    config.write_text(f"# a comment\nprompts:\n  core_test_reading: {bad}\n")
    with pytest.raises(ConfigError) as err:
        load_config(config, Experiment)
    assert str(err.value) == (
        f"config error: {config}:2: prompts: {bad}:2: unknown placeholder $golden in the "
        "'core_test_reading' prompt (its placeholders: $context, $question (required); "
        "$instruction (optional); write $$ for a literal $)"
    )


def test_unknown_prompt_names_and_missing_files_fail_on_load(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"unknown prompt 'core_test_readin' \(did you mean"):
        load_config(_yaml(tmp_path, "core_test_readin: x.txt"), Experiment)
    with pytest.raises(ConfigError, match=r"missing\.txt: no such prompt template"):
        load_config(_yaml(tmp_path, f"core_test_reading: {tmp_path / 'missing.txt'}"), Experiment)


def _yaml(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"prompts:\n  {entry}\n")
    return path
