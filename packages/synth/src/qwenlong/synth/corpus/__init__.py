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
from qwenlong.synth.corpus.table_grid import html_tables, render_table

__all__ = [
    "READERS",
    "IngestConfig",
    "html_tables",
    "html_text",
    "ingest",
    "ingest_folder",
    "ingest_hf_dataset",
    "render_table",
    "stable_id",
]
