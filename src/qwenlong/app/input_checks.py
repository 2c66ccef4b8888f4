"""Every path and value a command reads, checked before any model is loaded.

Loading a model takes seconds on CPU and minutes on GPU; a dataset path with a typo found
after that is time lost, and found after a hub lookup of the model name, minutes. Each
command that loads a model calls its `check_*_inputs` on the resolved config first, so bad
input fails at once, in one line naming the config key and the path.

The checks only look (existence, a config.json, the first rows); the runners still validate
what they read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qwenlong.core.errors import DatasetError
from qwenlong.core.model_paths import check_model_dir, check_tokenizer_dir

if TYPE_CHECKING:
    from qwenlong.core.backends.config import BackendConfig
    from qwenlong.evals.run.config import EvalConfig
    from qwenlong.memagent.run import MemAgentRunConfig
    from qwenlong.rl.config import TrainConfig

LOCAL_BACKENDS = ("hf", "vllm")
"""Backends whose `model` is a local folder; the openai backend's is a name the server knows."""


def check_backend(config: BackendConfig, what: str) -> None:
    """A local backend's model folder exists and holds config.json."""
    if config.backend in LOCAL_BACKENDS:
        check_model_dir(config.model, what)


def check_path(path: str | Path, what: str) -> None:
    """A dataset or benchmark file or folder exists."""
    if not Path(path).exists():
        raise DatasetError(f"{what}: {path}: no such file or folder")


def has_rows(path: str | Path, what: str) -> bool:
    """Whether a TaskSample dataset that must exist holds a row (reads one batch at most)."""
    from qwenlong.core.dataset_io import iter_samples

    check_path(path, what)
    return next(iter(iter_samples(path)), None) is not None


def check_eval_inputs(config: EvalConfig) -> None:
    """The model, tokenizer and judge folders and every benchmark path of an eval config."""
    check_backend(config.model, "model.model")
    if config.tokenizer is not None:
        check_tokenizer_dir(config.tokenizer, "tokenizer")
    if config.judge is not None:
        check_backend(config.judge.model, "judge.model.model")
    for index, bench in enumerate(config.benchmarks):
        if bench.path is not None:  # None loads the benchmark from the hub, by design
            check_path(bench.path, f"benchmarks[{index}].path")


def check_memagent_inputs(config: MemAgentRunConfig) -> None:
    """The model and tokenizer folders and the one input of a memagent config."""
    check_backend(config.model, "model.model")
    if config.tokenizer is not None:
        check_tokenizer_dir(config.tokenizer, "tokenizer")
    if config.dataset is not None:
        check_path(config.dataset.path, "dataset.path")
    if config.benchmark is not None and config.benchmark.path is not None:
        check_path(config.benchmark.path, "benchmark.path")
    if config.document is not None and not config.document.path.is_file():
        raise DatasetError(f"document.path: {config.document.path}: no such file")


def check_train_inputs(config: TrainConfig) -> None:
    """The policy and judge folders, and training (and used held-out) data that holds rows.

    Empty training data is named here as "0 rows"; left to the run, it surfaces as an empty
    held-out split or an empty sampler, which points away from the file.
    """
    check_model_dir(config.model, "model")
    if config.reward.use_judge and config.judge is not None:
        check_backend(config.judge, "judge.model")
    train = config.data.train
    filled = [has_rows(path, f"data.train[{index}]") for index, path in enumerate(train)]
    if not any(filled):
        raise DatasetError(f"data.train: {', '.join(train)}: 0 rows")
    heldout = config.data.heldout
    if heldout is not None and config.heldout.size and not has_rows(heldout, "data.heldout"):
        raise DatasetError(f"data.heldout: {heldout}: 0 rows")
