"""FRAMES (google/frames-benchmark): 824 multi-hop questions whose evidence is Wikipedia pages.

Published form: `test.tsv` with an unnamed index column, `Prompt`, `Answer`, `reasoning_types`,
`wiki_links` (a Python-literal list of page URLs) and `wikipedia_link_1` .. `wikipedia_link_11+`.
The benchmark ships no page text. QwenLong-L1 (through EvalScope's `frames` task) evaluated it
with the linked pages as the context: records carrying `wiki_items`, a list of `{title, text}`,
joined as `title\\ntext` per page, one page per line. Both forms load here:

- rows with `wiki_items` (the `test.jsonl` QwenLong-L1/EvalScope used) take their context from it;
- other rows take it from a local page store, `wiki_pages.jsonl` beside the questions file: one
  JSON object per line with `text` and `url` and/or `title` (our format: FRAMES defines none).
  Links are matched by URL (percent-decoding, scheme, mobile host and fragment ignored), then by
  the title the URL names. Pages the store lacks are left out and counted in
  `meta["pages_missing"]`;
- with neither (e.g. the hub copy), the question is loaded closed-book and
  `meta["context_source"]` says "none", so a report can tell such a run from the paper's.

`path` may be a folder (holding `test.jsonl`, or `test.tsv` and optionally `wiki_pages.jsonl`) or
one questions file (`.tsv`, `.jsonl`, `.json` or `.parquet`).
"""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import unquote, urlsplit

from qwenlong.core.errors import DatasetError
from qwenlong.core.records import Provenance, TaskSample
from qwenlong.evals.benchmarks.common import TokenCounter, fill_context_tokens, resolve_subset
from qwenlong.evals.benchmarks.files import Row, read_rows, require_path
from qwenlong.evals.benchmarks.hub import hub_rows

HUB_REPO = "google/frames-benchmark"
PAGE_STORE = "wiki_pages.jsonl"
QUESTION_FILES = ("test.jsonl", "test.tsv", "test.json", "test.parquet")
INDEX_COLUMNS = ("", "Unnamed: 0")
"""Names the unnamed index column gets: "" in the raw TSV, "Unnamed: 0" through pandas/hub."""


def url_key(url: str) -> str:
    """A Wikipedia URL reduced to host + decoded path, so spelling variants of a link meet."""
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().replace(".m.wikipedia.org", ".wikipedia.org")
    return f"{host}{unquote(parts.path).replace(' ', '_')}".rstrip("/")


def title_key(title: str) -> str:
    """A page title compared without case, underscores or surrounding space."""
    return unquote(title).replace("_", " ").strip().casefold()


def _title_from_url(url: str) -> str:
    return urlsplit(url.strip()).path.rstrip("/").rsplit("/", 1)[-1]


class PageStore:
    """Wikipedia pages by URL and by title, read from a `wiki_pages.jsonl` file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_url: dict[str, tuple[str, str]] = {}
        self._by_title: dict[str, tuple[str, str]] = {}
        for row in read_rows(path):
            url, title = row.optional_text("url"), row.optional_text("title")
            if not url and not title:
                raise row.error("a page needs a 'url' or a 'title'")
            page = (title or unquote(_title_from_url(url)).replace("_", " "), row.text("text"))
            if url:
                self._by_url[url_key(url)] = page
            self._by_title[title_key(page[0])] = page

    def find(self, url: str) -> tuple[str, str] | None:
        """(title, text) of the page `url` links to, or None when the store lacks it."""
        return self._by_url.get(url_key(url)) or self._by_title.get(title_key(_title_from_url(url)))


def _links(row: Row) -> list[str]:
    if row.has("wiki_links"):
        value = row.raw("wiki_links")
        if isinstance(value, str):
            # The TSV stores the list as a Python literal; literal_eval parses literals only.
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError) as err:
                raise row.error("field 'wiki_links' is not a list literal") from err
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise row.error("field 'wiki_links' must be a list of URLs")
        return [v for v in value if v.strip()]
    columns = sorted(
        (k for k in row.values if k.startswith("wikipedia_link_")),
        key=lambda k: int("".join(ch for ch in k if ch.isdigit()) or 0),
    )
    return [row.values[k] for k in columns if isinstance(row.values[k], str) and row.values[k]]


def _wiki_items_context(row: Row) -> str:
    items = row.raw("wiki_items")
    if not isinstance(items, list):
        raise row.error("field 'wiki_items' must be a list of {title, text} objects")
    pages = []
    for number, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("title", "text")
        ):
            raise row.error(f"field 'wiki_items' item {number} needs string 'title' and 'text'")
        pages.append(f"{item['title']}\n{item['text']}")
    return "\n".join(pages)


class Frames:
    """FRAMES with its linked pages as context. Paper and QwenLong-L1: max(cover-EM, judge)."""

    name = "frames"
    paper_metric = "cover_em"
    official_metric = "cover_em"
    breakdowns = ("reasoning_types",)
    use_judge = True
    subsets = ("all",)
    """FRAMES has one test set; "all" is the only subset."""

    def load(
        self,
        path: Path | None,
        subset: str | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> list[TaskSample]:
        resolve_subset(self.name, subset, self.subsets, "all")
        store: PageStore | None = None
        if path is None:
            rows = hub_rows(HUB_REPO, "test")
        else:
            require_path(path, "FRAMES test.tsv or test.jsonl")
            questions = self._questions_file(path)
            if (questions.parent / PAGE_STORE).is_file():
                store = PageStore(questions.parent / PAGE_STORE)
            rows = read_rows(questions)
        samples = [self._sample(row, index, store) for index, row in enumerate(rows)]
        return fill_context_tokens(samples, count_tokens)

    @staticmethod
    def _questions_file(path: Path) -> Path:
        if path.is_file():
            return path
        for name in QUESTION_FILES:
            if (path / name).is_file():
                return path / name
        raise DatasetError(f"{path}: folder has none of {', '.join(QUESTION_FILES)}")

    def _sample(self, row: Row, index: int, store: PageStore | None) -> TaskSample:
        links = _links(row)
        meta = {"reasoning_types": row.optional_text("reasoning_types")}
        if row.has("wiki_items"):
            context, meta["context_source"] = _wiki_items_context(row), "wiki_items"
        elif store is not None:
            found = [page for page in map(store.find, links) if page is not None]
            context = "\n".join(f"{title}\n{text}" for title, text in found)
            meta["context_source"] = "wiki_pages"
            meta["pages_missing"] = str(len(links) - len(found))
        else:
            context, meta["context_source"] = "", "none"
        own_index = next((row.values[k] for k in INDEX_COLUMNS if row.has(k)), index)
        return TaskSample(
            id=f"frames-{own_index}",
            task_type="multihop",
            question=row.text("Prompt"),
            answers=[row.text("Answer")],
            answer_kind="text",
            context=context,
            provenance=Provenance(generator=self.name, source_documents=links),
            meta=meta,
        )
