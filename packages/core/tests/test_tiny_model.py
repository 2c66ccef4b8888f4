"""The tiny model factory: loadable, Qwen-shaped, deterministic, with a Qwen-like tokenizer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.tiny_model import TinyModelConfig, build_tiny_model, count_parameters
from qwenlong.core.tokenizer_train import synthetic_corpus

SMALL = TinyModelConfig(vocab_size=512, corpus_paragraphs=200)
"""A cheaper build for tests that only need a second model directory."""


def file_hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_gives_byte_identical_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    expected = {
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert set(file_hashes(again)) == expected
    assert file_hashes(again) == file_hashes(tiny_model_dir)


def test_other_seed_changes_weights_and_tokenizer(tmp_path: Path) -> None:
    a = file_hashes(build_tiny_model(tmp_path / "a", SMALL))
    b = file_hashes(build_tiny_model(tmp_path / "b", SMALL.model_copy(update={"seed": 1})))
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["tokenizer.json"] != b["tokenizer.json"]
    assert a["chat_template.jinja"] == b["chat_template.jinja"]


def test_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model(tmp_path / "m", SMALL)
    assert torch.equal(torch.rand(3), expected)


def test_loads_as_qwen3_moe_with_configured_shape(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    cfg = model.config
    assert type(model).__name__ == "Qwen3MoeForCausalLM"
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (4, 2, 16)
    assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.norm_topk_prob) == (8, 2, True)
    assert cfg.max_position_embeddings == 131072
    assert cfg.rope_parameters["rope_theta"] == 1e7
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert tokenizer.eos_token_id == im_end and tokenizer.pad_token_id == endoftext
    assert model.generation_config.eos_token_id == [im_end, endoftext]
    assert model.generation_config.pad_token_id == endoftext
    assert cfg.eos_token_id == im_end


def test_parameter_count_matches_hand_computed_shape(tiny_model_dir: Path) -> None:
    # embeddings in and out: 2 * 2048 * 64; per layer: q/o 64*64 each, k/v 64*32 each, q/k norms
    # 16 each, 8 experts * 3 * 64 * 256, router 8 * 64, two layer norms 64; final norm 64.
    layer = 2 * 64 * 64 + 2 * 64 * 32 + 2 * 16 + 8 * 3 * 64 * 256 + 8 * 64 + 2 * 64
    assert count_parameters(tiny_model_dir) == 2 * 2048 * 64 + 2 * layer + 64 == 1_074_560
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert sum(p.numel() for p in model.parameters()) == 1_074_560


def test_chat_and_reasoning_tokens_are_single_tokens(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(tokenizer) == 2048
    ids = {}
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        encoded = tokenizer.encode(token, add_special_tokens=False)
        assert len(encoded) == 1, token
        ids[token] = encoded[0]
    assert sorted(ids.values()) == list(range(2043, 2048))
    text = "<|im_start|>x<think>a</think>b<|im_end|>"
    decoded = tokenizer.decode(tokenizer.encode(text), skip_special_tokens=True)
    assert decoded == "x<think>a</think>b"


def test_tokenizer_is_byte_level_and_splits_digits(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    for text in ("Déjà vu — 東京 🚀\n\ttabs", "x = 1_000_000;\n\n  indent", ""):
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode("2025", add_special_tokens=False))
    assert pieces == ["2", "0", "2", "5"]


def test_chat_template_renders_chatml(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    rendered = tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=False
    )
    assert rendered == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    plain = tokenizer.apply_chat_template(conversation[:2], tokenize=False)
    assert plain.endswith("Hi<|im_end|>\n")
    with pytest.raises(Exception, match="unknown role tool"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_tokenizer_learns_from_given_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quokka jumped over the wombat.\n" * 300, encoding="utf-8")
    out = build_tiny_model(tmp_path / "m", SMALL, corpus=[corpus])
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.tokenize(" quokka wombat") == ["Ġquokka", "Ġwombat"]


def test_bad_corpus_and_busy_output_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"corpus file not found: .*missing\.txt"):
        build_tiny_model(tmp_path / "m1", SMALL, corpus=[tmp_path / "missing.txt"])
    assert not (tmp_path / "m1").exists()
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DatasetError, match="corpus is empty"):
        build_tiny_model(tmp_path / "m2", SMALL, corpus=[empty])
    assert not (tmp_path / "m2").exists()
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"ok\xff\xfe")
    with pytest.raises(DatasetError, match=r"blob\.bin: not UTF-8 text \(byte 2\)"):
        build_tiny_model(tmp_path / "m3", SMALL, corpus=[binary])

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="busy exists and is not empty"):
        build_tiny_model(busy, SMALL)
    build_tiny_model(busy, SMALL, overwrite=True)
    assert not (busy / "keep.txt").exists() and (busy / "config.json").is_file()


def test_config_rejects_inconsistent_shapes() -> None:
    with pytest.raises(ValidationError, match="not a multiple of num_kv_heads"):
        TinyModelConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValidationError, match="exceeds num_experts"):
        TinyModelConfig(num_experts=2, experts_per_token=3)
    with pytest.raises(ValidationError, match="vocab_siz"):
        TinyModelConfig(vocab_siz=100)


def test_synthetic_corpus_is_seeded_and_varied() -> None:
    first = list(synthetic_corpus(7, 60))
    assert first == list(synthetic_corpus(7, 60))
    assert first != list(synthetic_corpus(8, 60))
    text = "".join(first)
    assert len(first) == 60
    assert any(c.isdigit() for c in text) and "\n" in text and '"' in text
    assert {",", ".", "?", "$", "%"} <= set(text)
