"""The generator seam: every generator states its `mode` and `stats`, and the generate stage
writes exactly those into candidates/<name>.json (no guessing at what a generator has)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenlong.synth.config import GeneratorsConfig, SynthConfig
from qwenlong.synth.dialogue.config import DialogueConfig
from qwenlong.synth.extract.rule import RuleTripleExtractor
from qwenlong.synth.interfaces import Corpus, Counts
from qwenlong.synth.kg.config import KGConfig
from qwenlong.synth.mase.config import MaseConfig
from qwenlong.synth.mase.generator import MaseStats
from qwenlong.synth.numerical.config import NumericalConfig
from qwenlong.synth.pipeline.generators import GENERATORS, GeneratorInputs
from qwenlong.synth.pipeline.stages import generate_stage
from qwenlong.synth.world import WorldConfig, build_world


def _word_count(text: str) -> int:
    return len(text.split())


def test_counts_as_dict_keeps_insertion_order_and_totals() -> None:
    counts = Counts()
    counts["made_multihop"] += 2
    counts["short_mc"] += 1
    counts.update({"made_multihop": 3})
    assert list(counts.as_dict().items()) == [("made_multihop", 5), ("short_mc", 1)]
    assert Counts().as_dict() == {}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    world = build_world(WorldConfig(seed=1, n_people=12, n_organisations=4, n_dialogues=2))
    corpus = Corpus(world.documents, _word_count)
    triples = [t for doc in RuleTripleExtractor().extract(world.documents) for t in doc]
    config = SynthConfig(
        tokenizer="unused",
        generators=GeneratorsConfig(
            kg_multihop=KGConfig(),
            corpus_numerical=NumericalConfig(num_samples=4),
            mase=MaseConfig(),
            dialogue_needles=DialogueConfig(target_tokens=(2048,), samples_per_target=1),
        ),
    )
    out = tmp_path_factory.mktemp("run")
    _, modes = generate_stage(config, corpus, out, GeneratorInputs(triples, None), llm=None)
    return out, modes


def test_generate_stage_writes_each_generators_mode_and_stats(generated) -> None:
    out, modes = generated
    info = {
        name: json.loads((out / "candidates" / f"{name}.json").read_text())
        for name in GENERATORS.names()
    }
    assert modes == {
        "kg_multihop": "template",
        "corpus_numerical": "tables=rule; prose=skipped: no LLM; questions=template",
        "mase": "skipped (no LLM)",
        "dialogue_needles": "template",
    }
    assert {name: i["mode"] for name, i in info.items()} == modes
    kg = info["kg_multihop"]["stats"]
    assert kg["triples_outside_corpus"] == 0 and kg["made_multihop"] > 0
    assert info["mase"]["stats"] == MaseStats().as_dict()
    assert info["corpus_numerical"]["stats"] == {} and info["dialogue_needles"]["stats"] == {}


@pytest.mark.parametrize("name", GENERATORS.names())
def test_every_generator_has_mode_and_stats_before_it_runs(name: str) -> None:
    section = getattr(GeneratorsConfig(), name)
    generator = GENERATORS.get(name)(section, GeneratorInputs([], None))
    assert isinstance(generator.mode, str)
    assert isinstance(generator.stats.as_dict(), dict)
