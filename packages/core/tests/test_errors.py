"""One-line error messages from exceptions whose text may be multi-line or empty."""

from __future__ import annotations

from qwenlong.core.errors import DatasetError, first_line, typed_first_line


def test_first_line_keeps_only_the_first_line_of_a_multi_line_message() -> None:
    err = OSError("Could not open file\n  at line 3\nhint: check the path")
    assert first_line(err) == "Could not open file"


def test_first_line_skips_leading_blank_lines_and_strips() -> None:
    err = ValueError("\n   \n  bad magic bytes  \nmore detail")
    assert first_line(err) == "bad magic bytes"


def test_first_line_of_an_empty_or_blank_message_is_the_type_name() -> None:
    assert first_line(ValueError()) == "ValueError"
    assert first_line(RuntimeError("  \n\t\n")) == "RuntimeError"


def test_first_line_reads_str_of_the_error() -> None:
    """A QwenlongError's str carries its kind, so the kind is part of the line."""
    assert (
        first_line(DatasetError("x.parquet: no rows\nrest")) == "dataset error: x.parquet: no rows"
    )
    assert first_line(KeyError("id")) == "'id'"


def test_typed_first_line_prefixes_the_type_name_unless_the_message_is_empty() -> None:
    assert typed_first_line(KeyError("id")) == "KeyError: 'id'"
    assert typed_first_line(OSError("\nconnection refused\nretry")) == "OSError: connection refused"
    assert typed_first_line(TimeoutError()) == "TimeoutError"
