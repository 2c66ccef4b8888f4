"""`qwenlong synth` rerun into its own --out: a resume keeps one metrics record and the same
files; --overwrite with a new world gives exactly what a fresh run of that world gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenlong.core.config_loader import load_config
from qwenlong.core.errors import ConfigError
from qwenlong.core.rundir import read_metrics
from qwenlong.synth.config import SynthConfig
from qwenlong.synth.pipeline.run import run_synth


def _config(tmp_path: Path, tokenizer: Path, *overrides: str) -> SynthConfig:
    path = tmp_path / "synth.yaml"
    path.write_text(
        f"seed: 3\ntokenizer: {tokenizer}\n"
        "corpus: {world: {seed: 3, n_people: 8, n_organisations: 3, n_places: 3, n_events: 2,"
        " n_dialogues: 1}}\n"
        "generators:\n"
        "  kg_multihop:\n"
        "    multihop: {multi_fact: 2, temporal: 0, causal: 0, hypothetical: 0}\n"
        "    reading: {multi_fact: 2, temporal: 0, causal: 0, hypothetical: 0}\n"
        "    mc: {multi_fact: 2, temporal: 0, causal: 0, hypothetical: 0}\n"
        "  corpus_numerical: {num_samples: 2}\n"
        "  mase: null\n"
        "  dialogue_needles: null\n"
        "assembly: {target_lengths: [1024]}\n"
    )
    return load_config(path, SynthConfig, overrides)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_rerun_keeps_one_record_and_overwrite_equals_a_fresh_run(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENLONG_PROGRESS", "0")
    first = _config(tmp_path, tiny_model_dir)
    out = tmp_path / "run"
    run_synth(first, out)
    dataset = (out / "dataset" / "data.parquet").read_bytes()
    run_synth(first, out)  # everything resumed
    assert [r["step"] for r in read_metrics(out)] == [0]
    assert (out / "dataset" / "data.parquet").read_bytes() == dataset

    other = _config(tmp_path, tiny_model_dir, "seed=7", "corpus.world.seed=7")
    with pytest.raises(ConfigError, match=r"\(corpus.world.seed: 3 -> 7, seed: 3 -> 7\)"):
        run_synth(other, out)
    run_synth(other, out, overwrite=True)
    run_synth(other, tmp_path / "fresh")
    assert _tree(out) == _tree(tmp_path / "fresh")
    assert (out / "dataset" / "data.parquet").read_bytes() != dataset
