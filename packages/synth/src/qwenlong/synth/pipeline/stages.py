"""The stages before filtering, each resumable from what it wrote to the run directory.

- corpus:   documents.parquet (and world.json for the fictional world, skipped.jsonl for
            ingested files that gave no document), written once.
- extract:  triples.jsonl, appended per batch of documents; finished documents are never
            extracted again.
- generate: candidates/<generator>.parquet plus a .json of its mode and counts, per generator;
            a finished generator is not run again.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from qwenlong.core.atomic_files import write_text_atomic
from qwenlong.core.dataset_io import read_documents, read_samples, write_documents, write_samples
from qwenlong.core.interfaces import ChatModel
from qwenlong.core.progress import progress_bar
from qwenlong.core.records import Document, TaskSample
from qwenlong.core.seeding import derive_rng
from qwenlong.synth.config import SynthConfig
from qwenlong.synth.corpus.ingest import SkippedDoc
from qwenlong.synth.interfaces import Corpus, CountTokens, GenerationContext, TripleExtractor
from qwenlong.synth.pipeline.generators import GENERATORS, GeneratorInputs
from qwenlong.synth.pipeline.triples import TripleStore


def corpus_stage(config: SynthConfig, out: Path, count: CountTokens) -> tuple[list[Document], str]:
    """Build or ingest the corpus, with token counts, once; later runs read it back."""
    path = out / "corpus" / "documents.parquet"
    source = config.corpus.source
    if path.exists():
        docs = read_documents(path)
        return docs, f"{source}: {len(docs)} documents (resumed)"
    docs: list[Document] = []
    if source in ("world", "both"):
        from qwenlong.synth.world import build_world, write_world

        world = build_world(config.corpus.world)
        write_world(world, out / "corpus" / "world.json")
        docs += world.documents
    if source in ("ingest", "both"):
        from qwenlong.synth.corpus.ingest import ingest

        skipped: list[SkippedDoc] = []
        docs += ingest(config.corpus.ingest, skipped=skipped)
        # before documents.parquet, whose presence marks the stage done
        lines = "".join(json.dumps(dataclasses.asdict(s)) + "\n" for s in skipped)
        write_text_atomic(out / "corpus" / "skipped.jsonl", lines)
    with progress_bar(len(docs), "count tokens") as advance:
        for doc in docs:
            doc.n_tokens = count(doc.text)
            advance()
    write_documents(docs, path)
    return docs, f"{source}: {len(docs)} documents"


def read_skipped(out: Path) -> list[SkippedDoc]:
    """The files the corpus stage skipped, with why (none for a world-only corpus)."""
    path = out / "corpus" / "skipped.jsonl"
    if not path.exists():
        return []
    return [SkippedDoc(**json.loads(line)) for line in path.read_text().splitlines()]


def make_extractor(config: SynthConfig, llm: ChatModel | None) -> TripleExtractor:
    choice = config.extraction.extractor
    if choice == "llm" or (choice == "auto" and llm is not None):
        if llm is None:
            from qwenlong.core.errors import ConfigError

            raise ConfigError("extraction.extractor is 'llm' but no `llm` model is configured")
        from qwenlong.synth.kg.llm_extract import LLMTripleExtractor

        return LLMTripleExtractor(llm, config.generators.kg_multihop.llm_extractor)
    from qwenlong.synth.extract.rule import RuleTripleExtractor

    return RuleTripleExtractor()


def extract_stage(
    config: SynthConfig, corpus: Corpus, out: Path, llm: ChatModel | None
) -> tuple[TripleStore, str]:
    """Triples for every document not yet extracted, written batch by batch."""
    store = TripleStore(out / "extract" / "triples.jsonl")
    if config.generators.kg_multihop is None:  # the only consumer of triples
        return store, "skipped (kg_multihop disabled)"
    extractor = make_extractor(config, llm)
    todo = [d for d in corpus.documents if not store.done(d.id)]
    size = config.extraction.batch_documents
    with progress_bar(len(todo), f"extract ({extractor.name})") as advance:
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            store.append([d.id for d in batch], extractor.extract(batch))
            advance(len(batch))
    resumed = len(corpus.documents) - len(todo)
    return store, f"{extractor.name}" + (f" ({resumed} documents resumed)" if resumed else "")


def generate_stage(
    config: SynthConfig,
    corpus: Corpus,
    out: Path,
    inputs: GeneratorInputs,
    llm: ChatModel | None,
) -> tuple[list[TaskSample], dict[str, str]]:
    """Run each enabled generator once; a finished generator's samples are read back."""
    samples: list[TaskSample] = []
    modes: dict[str, str] = {}
    for name in type(config.generators).model_fields:  # config order is run order
        section = getattr(config.generators, name)
        if section is None:
            modes[name] = "disabled"
            continue
        path = out / "candidates" / f"{name}.parquet"
        info_path = path.with_suffix(".json")
        if path.exists() and info_path.exists():
            made = read_samples(path)
            modes[name] = json.loads(info_path.read_text())["mode"] + " (resumed)"
        else:
            generator = GENERATORS.get(name)(section, inputs)
            ctx = GenerationContext(rng=derive_rng(config.seed, name), llm=llm)
            made = list(generator.generate(corpus, ctx))
            mode = generator.mode
            write_samples(made, path)
            info = {"mode": mode, "samples": len(made), "stats": generator.stats.as_dict()}
            # Written aside and renamed: the info file marks the generator as done, so a kill
            # must never leave it present but empty.
            write_text_atomic(info_path, json.dumps(info, indent=2, default=str) + "\n")
            modes[name] = mode
        samples += made
    return samples, modes
