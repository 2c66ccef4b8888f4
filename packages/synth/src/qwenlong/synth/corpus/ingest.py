"""Corpus ingestion: local folders and Hugging Face datasets into `Document` records.

Folders are read recursively in sorted order; the file's extension picks its reader (`READERS`):
txt and md (one document per file), html/htm (visible text, scripts and styles dropped, tables
as span-expanded markdown grids: `corpus.table_grid`), jsonl
and parquet (one document per row with a text field and optional "id", "title", "domain"),
pdf (`corpus.pdf`: reading order, ruled tables, page offsets) and docx (`corpus.docx_file`).
Hidden files and other extensions are skipped. Documents with no text after stripping are
skipped too: they state nothing a question could rest on. A file a reader gives up on with a
reason (a PDF with no text layer) is logged as one line naming it and listed in `skipped`, so
the synthesis report can count it; a folder that gives no document at all is a `DatasetError`.
Every document's `meta["source_type"]` names where it came from: the file extension, or "hf".

Ids are stable across runs and machines: a row's own "id" when it has one, else
"doc-" + the first 16 hex digits of sha1("<relative path>" or "<relative path>#<row>").
Domain: the `domain` argument, else the row's "domain", else the top-level subfolder the file
sits in, else "general".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from qwenlong.core.config import ConfigModel
from qwenlong.core.errors import DatasetError, first_line
from qwenlong.core.records import Document
from qwenlong.core.registry import Registry
from qwenlong.synth.corpus.table_grid import GridBuilder, render_table
from qwenlong.synth.interfaces import CountTokens


class IngestConfig(ConfigModel):
    """Which external corpora to read besides (or instead of) the fictional world."""

    folders: tuple[str, ...] = ()
    """Local folders to read recursively (txt, md, html, jsonl, parquet, pdf, docx)."""
    domain: str | None = None
    """Domain label for every document; None takes it from rows, then top-level subfolders."""
    text_field: str = "text"
    """Column or JSON key holding the text, for jsonl, parquet and HF datasets."""
    hf_dataset: str | None = None
    """A Hugging Face dataset name, a local folder saved with `save_to_disk`, or a local data
    folder `datasets.load_dataset` understands; None reads no HF dataset."""
    hf_config: str | None = None
    """The dataset's configuration (subset) name, when it has several."""
    hf_split: str = "train"
    """Split of the HF dataset to read."""
    hf_limit: int | None = None
    """Read at most this many rows of the HF dataset (None: all)."""


@dataclass(frozen=True)
class RawDoc:
    """What a reader found, before ids, domains and token counts are settled."""

    text: str
    row: int | None
    """Row number (0-based) for row-based files, None for one-document files."""
    where: str
    """File and line/row, for error messages."""
    doc_id: str | None = None
    title: str = ""
    domain: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    """Carried into `Document.meta` (a PDF's page offsets)."""
    skip: str = ""
    """Why the file gave no text, when a reader knows ("no text layer"): reported and counted."""


SOURCE_TYPE = "source_type"
"""`Document.meta` key: the file extension a document was read from, or "hf"."""


@dataclass(frozen=True)
class SkippedDoc:
    """A file or row that gave no document, and why: the report counts these per source type."""

    source: str
    source_type: str
    reason: str


log = logging.getLogger(__name__)

Reader = Callable[[Path, str], Iterator[RawDoc]]
"""(file, text field) -> the documents in it."""

READERS: Registry[Reader] = Registry("corpus file reader")
"""File extension (lower case, no dot) -> reader."""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text (byte {err.start})") from None


@READERS.register("txt")
def read_txt(path: Path, text_field: str) -> Iterator[RawDoc]:
    yield RawDoc(_read_text(path), None, str(path), title=path.stem)


@READERS.register("md")
def read_markdown(path: Path, text_field: str) -> Iterator[RawDoc]:
    """Title: the first "# " heading, else the file name."""
    text = _read_text(path)
    heading = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), "")
    yield RawDoc(text, None, str(path), title=heading or path.stem)


class _VisibleText(HTMLParser):
    """Text a browser would show, one block element per line; script/style/template dropped.

    Line breaks inside running text are spaces, as in a browser, except within `<pre>`. Each
    top-level `<table>` becomes its caption line and a span-expanded markdown grid
    (`table_grid.render_table`), the one table form every reader writes.
    """

    HIDDEN = frozenset({"script", "style", "noscript", "template", "head"})
    BLOCKS = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "section", "article", "header",
         "footer", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "dd", "dt"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.in_title = False
        self.title: list[str] = []
        self.table: GridBuilder | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        if self.table is not None:
            self.table.starttag(tag, attrs)
            return
        if tag == "table" and not self.hidden:
            self.table = GridBuilder()
            return
        if tag == "title":
            self.in_title = True
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        if self.table is not None:
            self.table.endtag(tag)
            if self.table.depth == 0:
                self.flush_table()
            return
        if tag == "title":
            self.in_title = False
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif self.hidden:
            return
        elif self.table is not None:
            self.table.data(data)
        else:
            self.parts.append(data if self.pre else data.replace("\n", " "))

    def flush_table(self) -> None:
        """Write the open table (closed or cut off by the end of the page) as its own block."""
        if self.table is not None:
            block = render_table(list(self.table.grid()), self.table.caption_text())
            self.parts.append(f"\n{block}\n")
            self.table = None


def html_text(markup: str) -> tuple[str, str]:
    """(visible text with one line per block and tables as markdown grids, title) of a page."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    parser.flush_table()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line), " ".join("".join(parser.title).split())


@READERS.register("html")
def read_html(path: Path, text_field: str) -> Iterator[RawDoc]:
    text, title = html_text(_read_text(path))
    yield RawDoc(text, None, str(path), title=title or path.stem)


READERS.add("htm", read_html)


def _from_row(row: Any, index: int, where: str, text_field: str) -> RawDoc:
    """A jsonl/parquet/HF row as a RawDoc; wrong shapes raise DatasetError naming `where`."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object, got {type(row).__name__}")
    if text_field not in row:
        raise DatasetError(f"{where}: no {text_field!r} field (keys: {', '.join(map(str, row))})")
    text = row[text_field]
    if not isinstance(text, str):
        raise DatasetError(f"{where}: field {text_field!r} is {type(text).__name__}, not text")
    doc_id = row.get("id")
    if doc_id is not None and not isinstance(doc_id, (str, int)):
        raise DatasetError(f"{where}: field 'id' is {type(doc_id).__name__}, not text or int")
    domain = row.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise DatasetError(f"{where}: field 'domain' is {type(domain).__name__}, not text")
    title = row.get("title")
    return RawDoc(
        text, index, where, None if doc_id is None else str(doc_id),
        title if isinstance(title, str) else "", domain,
    )  # fmt: skip


@READERS.register("jsonl")
def read_jsonl(path: Path, text_field: str) -> Iterator[RawDoc]:
    """One JSON object per line; blank lines are allowed and skipped."""
    row = 0
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {line_no}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
        yield _from_row(data, row, where, text_field)
        row += 1


@READERS.register("parquet")
def read_parquet(path: Path, text_field: str) -> Iterator[RawDoc]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path}: unreadable parquet ({first_line(err)})") from None
    if text_field not in table.column_names:
        columns = ", ".join(table.column_names)
        raise DatasetError(f"{path}: no {text_field!r} column (columns: {columns})")
    for index, row in enumerate(table.to_pylist()):
        yield _from_row(row, index, f"{path} row {index}", text_field)


READERS.add_lazy("pdf", "qwenlong.synth.corpus.pdf:read_pdf")
READERS.add_lazy("docx", "qwenlong.synth.corpus.docx_file:read_docx")


def stable_id(key: str) -> str:
    """ "doc-" + 16 hex digits of sha1(key): the same key gives the same id everywhere."""
    return "doc-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


class _Collector:
    """Turns RawDocs into Documents, refusing duplicate ids; empty ones go to `skipped`."""

    def __init__(
        self,
        domain: str | None,
        count_tokens: CountTokens | None,
        skipped: list[SkippedDoc] | None = None,
    ) -> None:
        self.domain = domain
        self.count_tokens = count_tokens
        self.seen: dict[str, str] = {}
        self.docs: list[Document] = []
        self.skipped: list[SkippedDoc] = [] if skipped is None else skipped

    def add(
        self, raw: RawDoc, key: str, source: str, fallback_domain: str, source_type: str
    ) -> None:
        if not raw.text.strip():
            if raw.skip:
                log.warning("%s: %s; skipped", raw.where, raw.skip)
            self.skipped.append(SkippedDoc(source, source_type, raw.skip or "no text"))
            return
        doc_id = raw.doc_id or stable_id(key)
        if doc_id in self.seen:
            raise DatasetError(f"{raw.where}: id {doc_id!r} already used at {self.seen[doc_id]}")
        self.seen[doc_id] = raw.where
        n_tokens = self.count_tokens(raw.text) if self.count_tokens else None
        domain = self.domain or raw.domain or fallback_domain
        meta = {SOURCE_TYPE: source_type, **raw.meta}
        self.docs.append(Document(doc_id, raw.text, domain, raw.title, source, n_tokens, meta))


def ingest_folder(
    path: str | Path,
    domain: str | None = None,
    count_tokens: CountTokens | None = None,
    text_field: str = "text",
    skipped: list[SkippedDoc] | None = None,
) -> list[Document]:
    """Every document under `path` (see the module docstring for formats, ids and domains).

    Files and rows that give no document are appended to `skipped` when it is given.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    collector = _Collector(domain, count_tokens, skipped)
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    for file in files:
        rel = file.relative_to(root)
        extension = file.suffix.lower().lstrip(".")
        if any(part.startswith(".") for part in rel.parts) or extension not in READERS:
            continue
        folder_domain = rel.parts[0] if len(rel.parts) > 1 else "general"
        for raw in READERS.get(extension)(file, text_field):
            key = rel.as_posix() if raw.row is None else f"{rel.as_posix()}#{raw.row}"
            collector.add(raw, key, key, folder_domain, extension)
    return collector.docs


def _load_hf(name_or_path: str, config_name: str | None, split: str) -> Any:
    import datasets

    local = Path(name_or_path)
    try:
        if (local / "state.json").exists() or (local / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(local))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return datasets.load_dataset(name_or_path, config_name, split=split)
    except (FileNotFoundError, ValueError, KeyError, ConnectionError) as err:
        raise DatasetError(
            f"HF dataset {name_or_path!r} split {split!r}: {first_line(err)}"
        ) from None


def ingest_hf_dataset(
    name_or_path: str,
    split: str = "train",
    text_field: str = "text",
    domain: str | None = None,
    count_tokens: CountTokens | None = None,
    config_name: str | None = None,
    limit: int | None = None,
    skipped: list[SkippedDoc] | None = None,
) -> list[Document]:
    """Rows of a Hugging Face dataset as Documents (ids from the row's "id", else hashed).

    Rows without text are appended to `skipped` when it is given.
    """
    dataset = _load_hf(name_or_path, config_name, split)
    if text_field not in dataset.column_names:
        columns = ", ".join(dataset.column_names)
        raise DatasetError(
            f"HF dataset {name_or_path!r}: no {text_field!r} column (columns: {columns})"
        )
    collector = _Collector(domain, count_tokens, skipped)
    label = f"{name_or_path}/{config_name}" if config_name else name_or_path
    for index, row in enumerate(dataset):
        if limit is not None and index >= limit:
            break
        raw = _from_row(row, index, f"HF dataset {name_or_path!r} row {index}", text_field)
        key = f"{label}/{split}#{index}"
        collector.add(raw, key, key, "general", "hf")
    return collector.docs


def ingest(
    config: IngestConfig,
    count_tokens: CountTokens | None = None,
    base: Path | None = None,
    skipped: list[SkippedDoc] | None = None,
) -> list[Document]:
    """Everything `config` names: each folder (relative to `base` when given), then the HF dataset.

    A source that gives no document is a `DatasetError` saying what was skipped and why: an
    empty corpus would otherwise fail later, far from its cause. What was skipped is appended
    to `skipped` when it is given.
    """
    docs: list[Document] = []
    skipped = [] if skipped is None else skipped
    for folder in config.folders:
        path = Path(folder) if base is None or Path(folder).is_absolute() else base / folder
        before = len(skipped)
        found = ingest_folder(path, config.domain, count_tokens, config.text_field, skipped)
        _require_documents(found, skipped[before:], str(path))
        docs.extend(found)
    if config.hf_dataset:
        before = len(skipped)
        found = ingest_hf_dataset(
            config.hf_dataset, config.hf_split, config.text_field, config.domain,
            count_tokens, config.hf_config, config.hf_limit, skipped,
        )  # fmt: skip
        _require_documents(found, skipped[before:], f"HF dataset {config.hf_dataset!r}")
        docs.extend(found)
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise DatasetError(
                f"document id {doc.id!r} occurs in more than one source ({doc.source})"
            )
        seen.add(doc.id)
    return docs


def _require_documents(docs: list[Document], skipped: list[SkippedDoc], where: str) -> None:
    if docs:
        return
    if not skipped:
        known = ", ".join(READERS.names())
        raise DatasetError(f"{where}: no document found (files read: {known})")
    named = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    raise DatasetError(f"{where}: no document with text ({len(skipped)} skipped: {named}{more})")
