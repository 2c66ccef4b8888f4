"""MRCR loading: token bins (counter and fallback), ranges, rendering, malformed rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.evals.benchmarks import get_benchmark
from qwenlong.evals.benchmarks.mrcr import token_bin, token_range

K = 1024


def _row(user_chars: int, answer: str = "PFXanswer", **overrides: object) -> dict:
    """A two-turn chat plus request whose content lengths sum to `user_chars` + 13 + 7."""
    messages = [
        {"role": "user", "content": "u" * user_chars},
        {"role": "assistant", "content": "assistant-one"},
        {"role": "user", "content": "request"},
    ]
    row = {
        "prompt": json.dumps(messages),
        "answer": answer,
        "random_string_to_prepend": "PFX",
        "n_needles": 2,
        "desired_msg_index": 1,
        "total_messages": 3,
        "n_chars": user_chars + 20,
        "date_added": "04-12-2025",
    }
    row.update(overrides)
    return row


def _shard(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize(
    ("tokens", "label", "coarse"),
    [
        (0, "0-4K", "0-128K"),
        (4 * K - 1, "0-4K", "0-128K"),
        (4 * K, "4K-8K", "0-128K"),
        (8 * K, "4K-8K", "0-128K"),
        (8 * K + 1, "8K-16K", "0-128K"),
        (128 * K, "64K-128K", "0-128K"),
        (128 * K + 1, "128K-256K", "128K-512K"),
        (512 * K, "256K-512K", "128K-512K"),
        (512 * K + 1, "512K-1M", "512K-1M"),
        (1024 * K, "512K-1M", "512K-1M"),
        (1024 * K + 1, "1M+", "1M+"),
    ],
)
def test_official_bins_are_right_inclusive(tokens: int, label: str, coarse: str) -> None:
    assert token_bin(tokens) == label
    assert token_range(tokens) == coarse


def test_bins_from_a_counter_cover_prompt_and_answer(tmp_path: Path) -> None:
    # count_tokens=len makes a token a character: total = user + 13 + 7 + len(answer) (9).
    sizes = {
        "small": 3000,
        "edge": 128 * K - 29,
        "over": 128 * K - 28,
        "mid": 300 * K,
        "big": 600 * K,
    }
    path = _shard(tmp_path / "2needle" / "2needle_0.parquet", [_row(s) for s in sizes.values()])
    mrcr = get_benchmark("mrcr")
    every = mrcr.load(path, "all", count_tokens=len)
    assert [int(s.meta["token_count"]) for s in every] == [s + 29 for s in sizes.values()]
    assert [s.meta["bin"] for s in every] == [
        "0-4K",
        "64K-128K",
        "128K-256K",
        "256K-512K",
        "512K-1M",
    ]
    assert {s.meta["token_count_source"] for s in every} == {"count_tokens"}
    assert [s.id for s in mrcr.load(path, count_tokens=len)] == ["2needle_0-0", "2needle_0-1"]
    assert [s.id for s in mrcr.load(path, "128K-512K", count_tokens=len)] == [
        "2needle_0-2",
        "2needle_0-3",
    ]
    assert [s.id for s in mrcr.load(path, "512K-1M", count_tokens=len)] == ["2needle_0-4"]


def test_fallback_estimates_from_n_chars(tmp_path: Path) -> None:
    path = _shard(tmp_path / "x.parquet", [_row(10, n_chars=40000, answer="P" * 100)])
    (sample,) = get_benchmark("mrcr").load(path)
    assert sample.meta["token_count"] == "10025"  # ceil((40000 + 100) / 4)
    assert sample.meta["bin"] == "8K-16K"
    assert sample.meta["token_count_source"] == "chars/4"
    assert sample.context_tokens is None


def test_fallback_without_n_chars_sums_message_lengths(tmp_path: Path) -> None:
    row = _row(4000)
    del row["n_chars"]
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (sample,) = get_benchmark("mrcr").load(path)
    assert sample.meta["token_count"] == str(-(-(4000 + 20 + 9) // 4))


def test_sample_renders_the_chat_and_keeps_scorer_inputs(tmp_path: Path) -> None:
    path = _shard(tmp_path / "x.parquet", [_row(3)])
    (sample,) = get_benchmark("mrcr").load(path, count_tokens=len)
    assert sample.context == "User: uuu\n\nAssistant: assistant-one"
    assert sample.question == "request"
    assert sample.answers == ["PFXanswer"]
    assert (sample.task_type, sample.answer_kind) == ("dialogue_memory", "sequence")
    assert sample.meta["prefix"] == "PFX" and sample.meta["n_needles"] == "2"
    assert json.loads(sample.meta["messages"])[-1] == {"role": "user", "content": "request"}
    assert sample.context_tokens == len(sample.context)
    assert sample.provenance.generator == "mrcr"


def test_folder_is_searched_for_every_shard(tmp_path: Path) -> None:
    _shard(tmp_path / "2needle" / "2needle_0.parquet", [_row(1)])
    _shard(tmp_path / "8needle" / "8needle_1.parquet", [_row(2), _row(3)])
    ids = [s.id for s in get_benchmark("mrcr").load(tmp_path)]
    assert ids == ["2needle_0-0", "8needle_1-0", "8needle_1-1"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"prompt": "[{not json"}, "field 'prompt' is not valid JSON"),
        (
            {
                "prompt": json.dumps(
                    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
                )
            },
            "must end with the user's request, ends with 'assistant'",
        ),
        (
            {"prompt": json.dumps([{"role": "robot", "content": "a"}])},
            "message 0 has no role among",
        ),
        ({"prompt": json.dumps([{"role": "user"}])}, "message 0 has no text 'content'"),
        ({"n_needles": "two"}, "field 'n_needles' must be an integer, got str"),
        ({"answer": None}, "missing field 'answer'"),
    ],
)
def test_malformed_rows_name_file_row_and_field(
    tmp_path: Path, override: dict, expected: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_row(3)) + "\n" + json.dumps(_row(3, **override)) + "\n")
    with pytest.raises(DatasetError) as err:
        get_benchmark("mrcr").load(path, "all")
    assert str(err.value).startswith(f"dataset error: {path} line 2: ")
    assert expected in str(err.value)


def test_folder_without_shards_fails(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no MRCR"):
        get_benchmark("mrcr").load(tmp_path)
    with pytest.raises(DatasetError, match="no such file or folder"):
        get_benchmark("mrcr").load(tmp_path / "absent")
