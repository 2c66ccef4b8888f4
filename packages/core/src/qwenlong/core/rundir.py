"""A run directory: resolved config, metrics as JSONL, optional TensorBoard / wandb mirrors.

    RUN/config.yaml        the resolved config (every default filled in)
    RUN/metrics.jsonl      one JSON object per `log` call: {"step": ..., **metrics}
    RUN/tensorboard/       event files, when `logging.tensorboard` is on
    RUN/<anything else>    artifacts placed with `path_for` (checkpoints, predictions, plots)

metrics.jsonl is the record of truth: each line is flushed to the OS as it is written, so killing
the process loses nothing already logged (a power cut may; there is no fsync per step). JSON has
no NaN or infinity, so a non-finite float is written as null. Reopening a run appends, after
dropping a torn final line that a kill left behind.

One record per step across reopenings: logging a step that was already in the file when the run
was opened first drops that step's old records. A resumed or rerun command redoes (or re-reports)
the steps it logs again, and appending would leave two records that disagree, e.g. eval's six
benchmark steps becoming twelve lines. The file is rewritten only then, so a run that never
re-logs a step (training trims its records to the checkpoint it resumes from) only appends.
Records logged within one opening are all kept.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from qwenlong.core.atomic_files import write_text_atomic
from qwenlong.core.config import ConfigModel
from qwenlong.core.config_loader import write_resolved_config
from qwenlong.core.errors import ConfigError, DatasetError

MetricValue = float | int | str | bool | None

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
RUNDIR_OUTPUTS: tuple[str, ...] = (CONFIG_FILE, METRICS_FILE, "tensorboard", "wandb", "wandb_id")
"""What a RunDir itself writes in the run folder (wandb keeps its files under RUN/wandb)."""


class LoggingConfig(ConfigModel):
    """Where metrics go besides RUN/metrics.jsonl, which is always written."""

    tensorboard: bool = False
    """Also write TensorBoard event files under RUN/tensorboard (numeric metrics only)."""
    wandb_project: str | None = None
    """Also log to this Weights & Biases project (numeric metrics and the resolved config).
    Needs the optional extra `qwenlong-core[wandb]`; None logs nothing to wandb."""
    wandb_entity: str | None = None
    """wandb team or user owning the project; None uses the logged-in account's default."""


class RunDir:
    """One run's output folder; a context manager that closes its loggers on exit."""

    def __init__(self, path: str | Path, logging: LoggingConfig = LoggingConfig()) -> None:
        self.path = Path(path)
        self.logging = logging
        self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.path / METRICS_FILE
        repair_torn_tail(self.metrics_path)
        # Steps already in metrics.jsonl when the run was opened and not yet logged again.
        self._earlier_steps = _logged_steps(self.metrics_path)
        self._metrics = self.metrics_path.open("a", encoding="utf-8")
        self._tensorboard: Any = None
        self._wandb: Any = None
        try:
            if self.logging.tensorboard:
                self._tensorboard = self._open_tensorboard()
            if self.logging.wandb_project:
                self._wandb = self._open_wandb()
        except BaseException:
            self.close()
            raise

    def path_for(self, name: str) -> Path:
        """`RUN/name` for an artifact, its parent folders created; `name` must stay inside RUN."""
        target = (self.path / name).resolve()
        if not target.is_relative_to(self.path.resolve()) or target == self.path.resolve():
            raise ConfigError(f"{self.path}: artifact name {name!r} is not a path inside the run")
        target.parent.mkdir(parents=True, exist_ok=True)
        return self.path / name

    def save_config(self, config: ConfigModel) -> Path:
        """Write the resolved config to RUN/config.yaml (and to the wandb run, when on)."""
        if self._wandb is not None:
            self._wandb.config.update(config.model_dump(mode="json"), allow_val_change=True)
        return write_resolved_config(config, self.path / CONFIG_FILE)

    def log(self, step: int, metrics: Mapping[str, MetricValue]) -> None:
        """Append `{"step": step, **metrics}` to metrics.jsonl and flush; mirror numbers.

        A step already on disk when the run was opened replaces its old records (see the
        module docstring). Numbers (bools as 0/1) go to TensorBoard and wandb; strings and
        nulls only to the JSONL.
        """
        if self._metrics.closed:
            raise RuntimeError(f"{self.path}: log() after close()")
        record: dict[str, Any] = {"step": int(step)}
        for name, value in metrics.items():
            if name == "step":
                raise ValueError(f"{self.path}: 'step' is the step argument, not a metric name")
            record[name] = _json_value(name, value)
        if record["step"] in self._earlier_steps:
            self._drop_earlier(record["step"])
        self._metrics.write(json.dumps(record, allow_nan=False) + "\n")
        self._metrics.flush()
        numeric = {
            k: float(v) for k, v in record.items() if k != "step" and isinstance(v, int | float)
        }
        if self._tensorboard is not None:
            for name, value in numeric.items():
                self._tensorboard.add_scalar(name, value, global_step=record["step"])
        if self._wandb is not None and numeric:
            self._wandb.log(numeric, step=record["step"])

    def rewind(self, step: int) -> None:
        """The run goes back to `step` (a rollback): each record of a later step is replaced
        when that step is logged again, as for a reopened run."""
        self._metrics.flush()
        self._earlier_steps |= {s for s in _logged_steps(self.metrics_path) if s > step}

    def _drop_earlier(self, step: int) -> None:
        """Rewrite metrics.jsonl without the records of `step` from before this opening.

        Written aside and renamed over the file, so a kill leaves either the old file or the
        new one; other lines keep their exact bytes.
        """
        self._metrics.close()
        kept = [
            line
            for line in self.metrics_path.read_text(encoding="utf-8").splitlines(keepends=True)
            if _line_step(line) != step
        ]
        write_text_atomic(self.metrics_path, "".join(kept))
        self._earlier_steps.discard(step)
        self._metrics = self.metrics_path.open("a", encoding="utf-8")

    def close(self) -> None:
        """Flush and close every sink; safe to call twice."""
        if not self._metrics.closed:
            self._metrics.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open_tensorboard(self) -> Any:
        from torch.utils.tensorboard import SummaryWriter  # imported lazily: pulls in tensorboard

        return SummaryWriter(log_dir=str(self.path / "tensorboard"))

    def _open_wandb(self) -> Any:
        """Start (or, on reopening a run, resume) the wandb run whose id is kept in RUN/wandb_id."""
        try:
            import wandb
        except ImportError:
            raise ConfigError(
                "logging.wandb_project is set but wandb is not installed; "
                "install the extra qwenlong-core[wandb]"
            ) from None
        id_file = self.path / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
        id_file.write_text(run_id + "\n")
        return wandb.init(
            project=self.logging.wandb_project,
            entity=self.logging.wandb_entity,
            name=self.path.name,
            dir=str(self.path),
            id=run_id,
            resume="allow",
        )


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a metrics.jsonl (or of RUN/metrics.jsonl given the run folder).

    A final line without its newline is a write cut short by a kill: it is kept if it parses and
    dropped if not. Any other line that is not a JSON object is corruption: `DatasetError`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    try:
        # "replace": a kill can cut a multi-byte character; only the torn last line holds one.
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        torn = number == len(lines)  # text.split leaves "" last when the file ends in "\n"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if torn:
                break
            raise DatasetError(f"{path} line {number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path} line {number}: expected a JSON object")
        records.append(record)
    return records


def _json_value(name: str, value: MetricValue) -> MetricValue:
    """A metric as JSON can hold it: non-finite floats become null, numpy scalars plain numbers."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    raise TypeError(
        f"metric {name!r}: expected a number, string, bool or None, got {type(value).__name__}"
    )


def _logged_steps(path: Path) -> set[int]:
    """The steps of the records in a metrics file (none when there is no file)."""
    if not path.exists():
        return set()
    return {int(r["step"]) for r in read_metrics(path) if isinstance(r.get("step"), int)}


def _line_step(line: str) -> int | None:
    """The step of one metrics line, None for a blank line or a record without an int step."""
    if not line.strip():
        return None
    step = json.loads(line).get("step")
    return step if isinstance(step, int) else None


def repair_torn_tail(path: Path) -> None:
    """Make the file end in a newline before appending: a torn last line that is not valid JSON
    is cut off (else the next record would be glued to it); a complete one gets its newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
        complete = True
    except ValueError:
        complete = False
    with path.open("r+b") as handle:
        if complete:
            handle.seek(0, 2)
            handle.write(b"\n")
        else:
            handle.truncate(start)
