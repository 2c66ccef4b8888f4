"""The synthesis report: the numbers in the Markdown, and valid histogram images."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.synth.interfaces import Drop
from qwenlong.synth.report import pass_rate_bins, write_report


def sample(
    sid: str, task: str, generator: str, tokens: int | None, rate: float | None
) -> TaskSample:
    return TaskSample(
        id=sid,
        task_type=task,
        question="q",
        answers=["a"],
        provenance=Provenance(generator=generator),
        context_tokens=tokens,
        meta={} if rate is None else {"pass_rate": repr(rate)},
    )


@pytest.fixture
def kept() -> list[TaskSample]:
    return [
        sample("a", "multihop", "kg_multihop", 4000, 0.25),
        sample("b", "multihop", "kg_multihop", 8000, 1.0),
        sample("c", "multihop", "mase", 6000, 0.5),
        sample("d", "numerical", "corpus_numerical", 3000, None),
        sample("e", "dialogue_memory", "dialogue", None, 0.75),
    ]


def test_report_has_counts_drops_bins_and_modes(tmp_path: Path, kept: list[TaskSample]) -> None:
    drops = [
        Drop.of(kept[0], "grounding", "verify", "8/8"),
        Drop.of(kept[0], "grounding", "verify", "7/8"),
        Drop.of(kept[3], "duplicate", "dedup"),
        Drop("z", "too_long", "assemble", task_type="mc", generator="mase"),
    ]
    modes = {"extract": "rule", "verify": "skipped (no LLM)"}
    path = write_report(tmp_path, kept, drops, modes, contamination={"frames": 3, "docmath": 1})
    text = path.read_text()
    assert path == tmp_path / "report.md"
    assert "Kept **5** samples; dropped **4**." in text
    assert "| verify | skipped (no LLM) |" in text
    # kept: generators sorted as columns, then the row total
    assert "| task type | corpus_numerical | dialogue | kg_multihop | mase | total |" in text
    assert "| multihop | 0 | 0 | 2 | 1 | 3 |" in text
    assert "| total | 1 | 1 | 2 | 1 | 5 |" in text
    # drops in pipeline order of reasons, with task-type columns
    assert "| reason | stage | mc | multihop | numerical | total |" in text
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith(("| too_long", "| grounding", "| duplicate"))]
    assert rows == [
        "| too_long | assemble | 1 | 0 | 0 | 1 |",
        "| grounding | verify | 0 | 2 | 0 | 2 |",
        "| duplicate | dedup | 0 | 0 | 1 | 1 |",
    ]
    # lengths: min, mean, max per task type; dialogue's context was never counted
    assert "| multihop | 3 | 4000 | 6000 | 8000 | 0 |" in text
    assert "| dialogue_memory | 0 | - | - | - | 1 |" in text
    # pass-rate bins with the default edges
    assert "| task type | [0, 0.25] | (0.25, 0.5] | (0.5, 0.75] | (0.75, 1] | unverified |" in text
    assert "| multihop | 1 | 1 | 0 | 1 | 0 |" in text
    assert "| numerical | 0 | 0 | 0 | 0 | 1 |" in text
    assert "| docmath | 1 |\n| frames | 3 |" in text


def test_histograms_are_valid_pngs_per_counted_task(tmp_path: Path, kept: list[TaskSample]) -> None:
    text = write_report(tmp_path, kept, [], {}).read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["context_lengths_multihop.png", "context_lengths_numerical.png"]
    for name in pngs:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(tmp_path / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert f"]({name})" in text
    assert "No sample was dropped." in text


def test_pass_rate_bins_follow_custom_edges(kept: list[TaskSample]) -> None:
    assert pass_rate_bins(kept, [0, 0.5, 1]) == {
        "multihop": [2, 1, 0],
        "numerical": [0, 0, 1],
        "dialogue_memory": [0, 1, 0],
    }


@pytest.mark.parametrize("raw", ["abc", "1.5", "nan"])
def test_a_bad_pass_rate_names_the_sample(raw: str) -> None:
    bad = sample("q7", "mc", "mase", 10, None)
    bad.meta["pass_rate"] = raw
    with pytest.raises(DatasetError, match=f"sample q7: meta\\['pass_rate'\\] is '{raw}'"):
        pass_rate_bins([bad], [0, 1])
