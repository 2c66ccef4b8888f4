"""The benchmark registry and the example files: every loader reads them, answers are findable."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError
from qwenlong.core.records import ANSWER_KINDS, TASK_TYPES
from qwenlong.evals.benchmarks import BENCHMARKS, get_benchmark
from qwenlong.evals.benchmarks.examples import WRITERS, write_examples

# name: (paper metric, official metric, use_judge, breakdowns), from RECIPE.md 4 and scorers.md
EXPECTED = {
    "docmath": ("cover_em", "docmath", True, ("subset",)),
    "longbench_v2": ("longbench_v2", "longbench_v2", False, ("difficulty", "length")),
    "frames": ("cover_em", "cover_em", True, ("reasoning_types",)),
    "mrcr": ("mrcr", "mrcr", False, ("bin", "n_needles")),
    "corpusqa": ("cover_em", "corpusqa", True, ("domain",)),
    "longbench_v1_qa": ("cover_em", "longbench_f1", True, ("dataset",)),
}


@pytest.fixture(scope="module")
def example_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_examples(tmp_path_factory.mktemp("examples"), seed=0, n=6)


def test_registry_holds_the_six_benchmarks_with_their_metrics() -> None:
    assert set(BENCHMARKS.names()) == set(EXPECTED) == set(WRITERS.names())
    for name, (paper, official, judge, breakdowns) in EXPECTED.items():
        benchmark = get_benchmark(name)
        assert benchmark.name == name
        assert (benchmark.paper_metric, benchmark.official_metric) == (paper, official)
        assert (benchmark.use_judge, benchmark.breakdowns) == (judge, breakdowns)
    with pytest.raises(ConfigError, match="did you mean 'frames'"):
        get_benchmark("frame")


def test_every_benchmark_loads_its_examples(example_paths: dict[str, Path]) -> None:
    assert set(example_paths) == set(EXPECTED)
    for name, path in example_paths.items():
        samples = get_benchmark(name).load(path, count_tokens=lambda text: len(text.split()))
        assert len(samples) == 6, name
        assert len({s.id for s in samples}) == 6, name
        for sample in samples:
            assert sample.task_type in TASK_TYPES and sample.answer_kind in ANSWER_KINDS
            assert sample.provenance.generator == name
            assert sample.instruction == ""
            assert all(key in sample.meta for key in EXPECTED[name][3]), (name, sample.meta)
            assert sample.context_tokens == len(sample.context.split())


def test_gold_answers_are_stated_in_the_context(example_paths: dict[str, Path]) -> None:
    for name, path in example_paths.items():
        for sample in get_benchmark(name).load(path):
            if sample.answer_kind == "choice":
                gold = sample.choices["ABCD".index(sample.answers[0])]
                assert gold in sample.context, sample.id
            elif sample.meta.get("official_gold", "").startswith("["):  # a CorpusQA list gold
                items = [x for x in sample.answers[0].split(", ") if x] if sample.answers else []
                assert all(item in sample.context for item in items), sample.id
            elif name == "mrcr":
                needle = sample.answers[0].removeprefix(sample.meta["prefix"])
                assert needle in sample.context and sample.meta["prefix"] in sample.question
            else:
                assert sample.answers[0] in sample.context, sample.id


def test_examples_are_deterministic_per_seed(tmp_path: Path) -> None:
    def snapshot(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    first = snapshot(_written(tmp_path / "a", seed=5))
    assert first == snapshot(_written(tmp_path / "b", seed=5))
    assert first != snapshot(_written(tmp_path / "c", seed=6))
    assert any(name.endswith(".parquet") for name in first)


def _written(root: Path, seed: int) -> Path:
    write_examples(root, seed=seed, n=3)
    return root


def test_small_n_still_covers_every_part(tmp_path: Path) -> None:
    paths = write_examples(tmp_path, seed=1, n=1)
    assert len(get_benchmark("docmath").load(paths["docmath"])) == 4
    assert len(get_benchmark("longbench_v1_qa").load(paths["longbench_v1_qa"])) == 5
    assert len(get_benchmark("mrcr").load(paths["mrcr"])) == 1
    with pytest.raises(ConfigError, match="n must be at least 1"):
        write_examples(tmp_path, n=0)


def test_loading_without_a_counter_leaves_token_counts_unset(
    example_paths: dict[str, Path],
) -> None:
    samples = get_benchmark("longbench_v2").load(example_paths["longbench_v2"])
    assert {s.context_tokens for s in samples} == {None}
    assert {s.meta["length"] for s in samples} == {"short", "medium", "long"}
