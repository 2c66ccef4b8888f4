"""`qwenlong models tiny`: builds a loadable model; bad options fail with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer
from typer.testing import CliRunner

from qwenlong.app.cli import app, main
from qwenlong.app.prompt_corpus import prompt_texts
from qwenlong.core.dataset_io import write_documents
from qwenlong.core.records import Document
from qwenlong.core.tiny_model import count_parameters

runner = CliRunner()


def test_tiny_builds_the_requested_shape(tmp_path: Path) -> None:
    out = tmp_path / "m"
    shape = ["--vocab-size", "1024", "--num-experts", "4", "--experts-per-token", "1"]
    attention = ["--num-heads", "8", "--num-kv-heads", "8", "--head-dim", "8"]
    rope = ["--rope-theta", "10000"]
    args = ["models", "tiny", "--out", str(out), "--seed", "3", *shape, *attention, *rope]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["vocab_size"], config["num_local_experts"]) == (1024, 4)
    assert config["num_experts_per_tok"] == 1
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (8, 8)
    assert (config["head_dim"], config["rope_parameters"]["rope_theta"]) == (8, 10000.0)
    assert result.output.strip() == f"{out}\t{count_parameters(out):,} parameters"


def test_tiny_trains_the_tokenizer_on_given_files(tmp_path: Path) -> None:
    corpus = tmp_path / "a.txt"
    corpus.write_text("xylophone quartet\n" * 200, encoding="utf-8")
    out = tmp_path / "m"
    args = ["models", "tiny", "--out", str(out), "--vocab-size", "512", "--corpus", str(corpus)]
    assert runner.invoke(app, args).exit_code == 0
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    assert "Ġquartet" in vocab and "xylophone" in vocab


def test_tiny_trains_the_tokenizer_on_a_document_parquet(tmp_path: Path) -> None:
    docs = [
        Document(id=f"d{i}", text="{{Infobox person\n| name = Zorbulax Quendrith\n}}")
        for i in range(200)
    ]
    corpus = write_documents(docs, tmp_path / "corpus" / "documents.parquet")
    out = tmp_path / "m"
    args = ["models", "tiny", "--out", str(out), "--vocab-size", "512", "--corpus", str(corpus)]
    assert runner.invoke(app, args).exit_code == 0
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    assert "ĠZorbulax" in vocab and "Infobox" in vocab


def test_learn_prompts_makes_the_prompt_words_whole_tokens(tmp_path: Path) -> None:
    docs = [
        Document(id=f"d{i}", text=f"{{{{Infobox person\n| name = Zorb{i} Quend{i % 7}\n}}}}")
        for i in range(300)
    ]
    corpus = write_documents(docs, tmp_path / "corpus" / "documents.parquet")
    base = ["models", "tiny", "--vocab-size", "1024", "--corpus", str(corpus)]
    for name, extra in (("plain", []), ("prompts", ["--learn-prompts"])):
        result = runner.invoke(app, [*base, "--out", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    plain = AutoTokenizer.from_pretrained(tmp_path / "plain")
    learned = AutoTokenizer.from_pretrained(tmp_path / "prompts")
    update = prompt_texts()[2]  # the memory agent's update prompt frame
    assert len(learned.encode(update)) < 0.6 * len(plain.encode(update))
    assert learned.tokenize(" memory") == ["Ġmemory"]
    assert (
        len(learned.encode("| name = Zorb12 Quend5"))
        <= len(plain.encode("| name = Zorb12 Quend5")) + 2
    )


def test_busy_output_and_bad_shape_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "tiny", "--out", str(busy)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: tiny model output") and "\n" not in err

    with pytest.raises(SystemExit) as exit_info:
        shape = ["--num-experts", "2", "--experts-per-token", "3"]
        main(["models", "tiny", "--out", str(tmp_path / "n"), *shape])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "config error: models tiny: experts_per_token 3 exceeds num_experts"

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "tiny", "--out", str(tmp_path / "n"), "--vocab-size", "100"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "config error: models tiny: vocab_size: Input should be greater than or equal to 512"
    )
    assert not (tmp_path / "n").exists()


def test_models_module_imports_no_torch() -> None:
    code = (
        "import sys, qwenlong.app.commands.models; "
        "sys.exit(int('torch' in sys.modules or 'transformers' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
