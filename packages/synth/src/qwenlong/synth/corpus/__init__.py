"""Corpus ingestion: local folders and HF datasets into `Document`s (see `corpus.ingest`)."""

from qwenlong.synth.corpus.ingest import (
    READERS,
    IngestConfig,
    html_text,
    ingest,
    ingest_folder,
    ingest_hf_dataset,
    stable_id,
)

__all__ = [
    "READERS",
    "IngestConfig",
    "html_text",
    "ingest",
    "ingest_folder",
    "ingest_hf_dataset",
    "stable_id",
]
