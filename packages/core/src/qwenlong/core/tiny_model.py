"""A tiny, randomly initialised Qwen3-MoE with its own tokenizer: the CPU stand-in for Qwen3-30B-A3B.

Every CPU test and the embedded default recipe need a model that has the real architecture
(GQA attention with q/k norms, a routed mixture of experts, RoPE long enough for long-context
tests) and loads through the normal `transformers` Auto classes, yet is built in seconds
without a download. `build_tiny_model` writes such a directory: a seeded random
`Qwen3MoeForCausalLM` in safetensors, a byte-level BPE tokenizer trained locally
(`qwenlong.core.tokenizer_train`), the ChatML template, and a generation config whose eos is
`<|im_end|>`. The same config and corpus give byte-identical files.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import Field, model_validator

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.core.tokenizer_train import (
    CHAT_TEMPLATE,
    ENDOFTEXT,
    IM_END,
    synthetic_corpus,
    train_bpe_tokenizer,
)


class TinyModelConfig(ConfigModel):
    """Shape of the tiny model. All defaults are ours (the paper has no such model): about 1M
    parameters, small enough that a batched CPU decode runs thousands of tokens per second."""

    vocab_size: int = Field(default=2048, ge=512)
    """Embedding rows; the tokenizer learns `vocab_size - 5` ids, the chat tokens take the rest."""
    hidden_size: int = Field(default=64, ge=8)
    """Width of the residual stream."""
    num_layers: int = Field(default=2, ge=1)
    """Decoder layers, every one a MoE layer (Qwen3-30B-A3B has 48)."""
    num_heads: int = Field(default=4, ge=1)
    """Query heads."""
    num_kv_heads: int = Field(default=2, ge=1)
    """Key/value heads: fewer than query heads, grouped-query attention as in Qwen3 (32Q/4KV)."""
    head_dim: int = Field(default=16, ge=2, multiple_of=2)
    """Per-head width (even, for RoPE); Qwen3 sets it apart from hidden_size / num_heads."""
    moe_intermediate_size: int = Field(default=256, ge=1)
    """Hidden width of each expert's SwiGLU MLP."""
    num_experts: int = Field(default=8, ge=1)
    """Routed experts per layer (Qwen3-30B-A3B has 128)."""
    experts_per_token: int = Field(default=2, ge=1)
    """Experts each token is routed to (Qwen3-30B-A3B uses 8)."""
    norm_topk_prob: bool = True
    """Renormalise the chosen experts' router weights to sum to 1, as Qwen3-30B-A3B does."""
    max_position_embeddings: int = Field(default=131072, ge=128)
    """Longest sequence the model accepts: room for 128K-token long-context tests."""
    rope_theta: float = Field(default=10_000_000.0, gt=0)
    """RoPE base. Qwen3-2507's value; with head_dim 16 the slowest rotary wavelength (~8M
    positions) still exceeds max_position_embeddings, so no two positions alias."""
    tie_word_embeddings: bool = False
    """Share input and output embeddings; Qwen3-30B-A3B keeps them separate."""
    initializer_range: float = Field(default=0.02, gt=0)
    """Std of the normal init of linear and embedding weights (the transformers default)."""
    seed: int = 0
    """Seeds the weights and the generated tokenizer corpus."""
    corpus_paragraphs: int = Field(default=1500, ge=10)
    """Paragraphs of generated text to train the tokenizer on when no corpus files are given
    (about 390 KB at the default: enough to fill a 2048-token vocabulary in well under a second)."""

    @model_validator(mode="after")
    def _check_shapes(self) -> TinyModelConfig:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads")
        if self.experts_per_token > self.num_experts:
            raise ValueError(f"experts_per_token {self.experts_per_token} exceeds num_experts")
        return self


def build_tiny_model(
    out_dir: Path | str,
    config: TinyModelConfig = TinyModelConfig(),
    corpus: Sequence[Path] | None = None,
    *,
    overwrite: bool = False,
    extra_texts: Sequence[str] = (),
) -> Path:
    """Write a loadable HF model directory and return its path.

    The tokenizer is trained on `corpus` (UTF-8 text files, or `.parquet` document files such
    as synth's `corpus/documents.parquet`, whose `text` column is read) or, when None, on text
    generated from `config.seed`; `extra_texts` are added to either (the app layer passes the
    prompt templates the model will be asked in, so their words become whole tokens). The
    directory holds config.json, generation_config.json, model.safetensors, tokenizer.json,
    tokenizer_config.json and chat_template.jinja. An existing non-empty `out_dir` is an error
    unless `overwrite`, which replaces it.
    """
    out = Path(out_dir)
    for path in corpus or ():
        if not Path(path).is_file():
            raise DatasetError(f"tokenizer corpus file not found: {path}")
    busy = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if busy and not overwrite:
        raise ConfigError(
            f"tiny model output {out} exists and is not empty (overwrite replaces it)"
        )
    texts = (
        _read_corpus(corpus) if corpus else synthetic_corpus(config.seed, config.corpus_paragraphs)
    )
    tokenizer = train_bpe_tokenizer(itertools.chain(texts, extra_texts), config.vocab_size)
    if busy:
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    out.mkdir(parents=True, exist_ok=True)
    _save_tokenizer(tokenizer, out, config)
    _save_model(
        out, config, pad_id=tokenizer.token_to_id(ENDOFTEXT), eos_id=tokenizer.token_to_id(IM_END)
    )
    return out


def count_parameters(model_dir: Path | str) -> int:
    """Total parameters in a model directory's safetensors files, read from their headers only."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise DatasetError(f"no .safetensors files in {model_dir}")
    total = 0
    for file in files:
        with safe_open(file, framework="np") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                count = 1
                for dim in handle.get_slice(name).get_shape():
                    count *= dim
                total += count
    return total


def _read_corpus(files: Sequence[Path]) -> Iterator[str]:
    """Lines of the corpus files; a missing, unreadable or empty corpus fails naming the file."""
    seen_text = False
    for path in files:
        for text in _corpus_texts(Path(path)):
            seen_text = seen_text or bool(text.strip())
            yield from text.splitlines(keepends=True)
    if not seen_text:
        raise DatasetError(f"tokenizer corpus is empty: {', '.join(map(str, files))}")


def _corpus_texts(path: Path) -> Iterator[str]:
    """The texts of one corpus file: a parquet file's documents, or the whole text file.

    Training the tokenizer on the documents a model will read (synth's fictional world, say)
    gives their names and infobox keys whole tokens, which roughly halves a tiny model's
    prompts against the generic generated corpus.
    """
    if path.suffix == ".parquet":
        from qwenlong.core.dataset_io import iter_documents

        yield from (doc.text for doc in iter_documents(path))
        return
    try:
        yield path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text (byte {err.start})") from None


def _save_tokenizer(tokenizer: object, out: Path, config: TinyModelConfig) -> None:
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        chat_template=CHAT_TEMPLATE,
        model_max_length=config.max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    wrapped.save_pretrained(out)


def _save_model(out: Path, config: TinyModelConfig, pad_id: int, eos_id: int) -> None:
    """Seeded random init, saved in float32 safetensors, without touching the global RNG."""
    import torch
    from transformers import GenerationConfig, Qwen3MoeConfig, Qwen3MoeForCausalLM

    from qwenlong.core.backends.hf import quiet_progress_bars
    from qwenlong.core.file_modes import apply_umask

    hf_config = Qwen3MoeConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.moe_intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        moe_intermediate_size=config.moe_intermediate_size,
        num_experts=config.num_experts,
        num_experts_per_tok=config.experts_per_token,
        norm_topk_prob=config.norm_topk_prob,
        max_position_embeddings=config.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        tie_word_embeddings=config.tie_word_embeddings,
        initializer_range=config.initializer_range,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Qwen3MoeForCausalLM(hf_config).to(torch.float32)
    # Both chat eos tokens end generation, as in Qwen3's own generation config.
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, bos_token_id=None
    )
    with quiet_progress_bars():
        model.save_pretrained(out)
    apply_umask(out.glob("*.safetensors"))  # safetensors writes its files 0600
