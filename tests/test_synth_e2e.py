"""`qwenlong synth` end to end: killed mid-run and resumed gives the uninterrupted dataset;
verification's model calls are stored and never repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.core.dataset_io import read_samples
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.records import Completion, Conversation, TaskSample
from qwenlong.synth.config import SynthConfig
from qwenlong.synth.pipeline.run import run_synth


def _config_text(tokenizer: Path) -> str:
    return (
        f"seed: 3\ntokenizer: {tokenizer}\n"
        "corpus: {world: {seed: 3, n_people: 16, n_organisations: 6, n_dialogues: 2}}\n"
        "generators:\n"
        "  corpus_numerical: {num_samples: 12}\n"
        "  dialogue_needles: {target_tokens: [2048], samples_per_target: 2}\n"
        "assembly: {target_lengths: [2048, 3072]}\n"
    )


def _synth(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "qwenlong.app.cli", "synth", str(config), "--out", str(out)]


def _dataset(out: Path) -> list[TaskSample]:
    return read_samples(out / "dataset" / "data.parquet")


@pytest.mark.slow  # the kill test of tests/test_kill_resume_data.py covers more; 12 s here
def test_killed_synth_resumes_to_the_same_dataset(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENLONG_PROGRESS", "0")
    config = tmp_path / "synth.yaml"
    config.write_text(_config_text(tiny_model_dir))
    env = {**os.environ, "QWENLONG_PROGRESS": "0"}

    straight = tmp_path / "straight"  # in this process; only the killed run needs its own
    main(_synth(config, straight)[3:])

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(_synth(config, resumed), env=env, stderr=subprocess.DEVNULL)
    marker = resumed / "candidates" / "kg_multihop.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(0.02)
    assert proc.poll() is None, "synthesis finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (resumed / "dataset").exists()
    triples = (resumed / "extract" / "triples.jsonl").read_bytes()

    main(_synth(config, resumed)[3:])
    assert (resumed / "extract" / "triples.jsonl").read_bytes() == triples  # not re-extracted
    assert "(resumed)" in (resumed / "report.md").read_text()
    a, b = _dataset(straight), _dataset(resumed)
    assert a == b
    assert {s.task_type for s in a} == {"mc", "multihop", "reading", "numerical", "dialogue_memory"}


class KnowsNothing:
    """A solver that never answers correctly, counting the questions it is asked."""

    name = "knows-nothing"

    def __init__(self) -> None:
        self.questions = 0

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> list[list[Completion]]:
        self.questions += len(conversations) * sampling.n
        return [[Completion("</think>I cannot tell.")] * sampling.n for _ in conversations]

    def close(self) -> None:
        pass


def test_verification_drops_unanswerable_samples_and_never_asks_twice(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from qwenlong.core.config_loader import load_config

    path = tmp_path / "synth.yaml"
    path.write_text(_config_text(tiny_model_dir) + "verify: {k: 2, max_new_tokens: 8}\n")
    config = load_config(path, SynthConfig)
    solver = KnowsNothing()
    summary = run_synth(config, tmp_path / "run", solver=solver)
    asked = solver.questions
    assert asked > 0
    # grounding keeps everything (nothing is answered without documents); robustness drops all
    assert summary["samples"] == 0 and summary["drops"]["robustness"] > 0
    assert "knows-nothing" in summary["stage_modes"]["verify"]

    again = KnowsNothing()
    resumed = run_synth(config, tmp_path / "run", solver=again)
    assert again.questions == 0
    assert resumed["drops"] == summary["drops"] and resumed["samples"] == summary["samples"]


def test_unknown_config_key_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    from qwenlong.core.config_loader import load_config
    from qwenlong.core.errors import ConfigError

    path = tmp_path / "synth.yaml"
    path.write_text(f"tokenizer: {tiny_model_dir}\ngenerators: {{kg_multihop: {{min_hop: 2}}}}\n")
    with pytest.raises(ConfigError, match=r"synth\.yaml:2: generators\.kg_multihop\.min_hop is"):
        load_config(path, SynthConfig)


def test_every_llm_path_runs_with_a_real_model(tiny_chat_model, tmp_path: Path) -> None:
    """The tiny random model through LLM extraction, rewriting, prose tables, MASE and
    verification: it answers nonsense, so the stages must count failures and carry on."""
    from qwenlong.core.config_loader import load_config_dict

    config = load_config_dict(
        {
            "seed": 1,
            "tokenizer": str(tiny_chat_model.name),
            "corpus": {"world": {"seed": 1, "n_people": 8, "n_organisations": 3, "n_dialogues": 1}},
            "extraction": {"batch_documents": 64},
            "generators": {
                "kg_multihop": {
                    "rewrite": {"enabled": True, "max_new_tokens": 16},
                    "llm_extractor": {"max_new_tokens": 16, "max_retries": 0},
                },
                "corpus_numerical": {
                    "num_samples": 4,
                    "prose": {"max_new_tokens": 16, "max_retries": 0, "max_documents": 2},
                    "paraphrase": {"max_new_tokens": 16},
                },
                "mase": {
                    "rounds": 1,
                    "proposals_per_round": 1,
                    "solver_samples": 1,
                    "proposer": {"max_new_tokens": 16},
                    "solver": {"max_new_tokens": 8},
                    "clusters": {"max_clusters": 1},
                },
                "dialogue_needles": {"target_tokens": [2048], "samples_per_target": 1},
            },
            "assembly": {"target_lengths": [2048]},
            "verify": {"k": 1, "max_new_tokens": 8},
        },
        SynthConfig,
        source="test",
    )
    summary = run_synth(config, tmp_path / "run", llm=tiny_chat_model)
    modes = summary["stage_modes"]
    assert modes["extract"] == "llm"
    assert modes["generator mase"].startswith("llm")
    assert "prose=llm" in modes["generator corpus_numerical"]
    assert modes["verify"].startswith(tiny_chat_model.name)
    stats = (tmp_path / "run" / "candidates" / "mase.json").read_text()
    assert '"proposals"' in stats


def _ingest_config(tokenizer: Path, folder: Path, source: str) -> SynthConfig:
    from qwenlong.core.config_loader import load_config_dict

    world = {"seed": 1, "n_people": 8, "n_organisations": 3, "n_dialogues": 1}
    return load_config_dict(
        {
            "seed": 1,
            "tokenizer": str(tokenizer),
            "corpus": {"source": source, "world": world, "ingest": {"folders": [str(folder)]}},
            "generators": {"corpus_numerical": {"num_samples": 4}, "mase": None,
                           "dialogue_needles": None},
            "assembly": {"target_lengths": [2048]},
        },
        SynthConfig,
        source="test",
    )  # fmt: skip


def test_report_counts_what_each_source_type_gave_and_skipped_scans(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pdf_fixtures as fx

    from qwenlong.core.dataset_io import read_documents
    from qwenlong.synth.corpus.pdf import page_of

    monkeypatch.setenv("QWENLONG_PROGRESS", "0")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("Mara Holt was born in Corvel.\n")
    fx.multipage_pdf(corpus / "town.pdf", [["Corvel lies on the Lenn."], ["Its mayor is Ada."]])
    fx.scanned_pdf(corpus / "scan.pdf")
    summary = run_synth(_ingest_config(tiny_model_dir, corpus, "both"), tmp_path / "run")

    by_type = summary["by_source_type"]
    assert set(by_type) == {"fictional", "pdf", "txt"}
    assert by_type["pdf"]["documents"] == 1 and by_type["pdf"]["skipped"] == 1
    assert by_type["pdf"]["gave_none"]["no text layer"] == 1
    assert by_type["fictional"]["kept"] == summary["samples"] > 0  # dialogue is off
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Yield by source type" in report and "1 no text layer" in report
    (pdf,) = [
        d
        for d in read_documents(tmp_path / "run/corpus/documents.parquet")
        if d.source == "town.pdf"
    ]
    assert page_of(pdf, pdf.text.index("mayor")) == 2  # page offsets kept in the corpus file


def test_a_folder_of_scans_only_stops_with_one_clear_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pdf_fixtures as fx

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    fx.scanned_pdf(corpus / "scan.pdf")
    config = tmp_path / "synth.yaml"
    config.write_text(
        f"tokenizer: {tiny_model_dir}\n"
        f"corpus: {{source: ingest, ingest: {{folders: [{corpus}]}}}}\n"
    )
    with pytest.raises(SystemExit) as stopped:
        main(["synth", str(config), "--out", str(tmp_path / "run")])
    assert stopped.value.code != 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"dataset error: {corpus}: no document with text (1 skipped: scan.pdf: no text layer)"
    )
