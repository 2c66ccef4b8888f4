"""The generator registry: how each configured generator is built from its config section."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qwenlong.core.registry import Registry
from qwenlong.evals.interfaces import Judge
from qwenlong.synth.interfaces import Generator, Triple


@dataclass
class GeneratorInputs:
    """What earlier stages hand to generators besides their own config."""

    triples: Sequence[Triple]
    judge: Judge | None


GeneratorBuilder = Callable[[Any, GeneratorInputs], Generator]

GENERATORS: Registry[GeneratorBuilder] = Registry("generator")
"""Keys are the fields of `GeneratorsConfig`, in the order generators run."""


@GENERATORS.register("kg_multihop")
def _kg(config: Any, inputs: GeneratorInputs) -> Generator:
    from qwenlong.synth.kg.generator import KGMultihopGenerator

    return KGMultihopGenerator(config, inputs.triples)


@GENERATORS.register("corpus_numerical")
def _numerical(config: Any, inputs: GeneratorInputs) -> Generator:
    from qwenlong.synth.numerical.generator import CorpusNumericalGenerator

    return CorpusNumericalGenerator(config)


@GENERATORS.register("mase")
def _mase(config: Any, inputs: GeneratorInputs) -> Generator:
    from qwenlong.synth.mase.generator import MaseGenerator

    return MaseGenerator(config, judge=inputs.judge)


@GENERATORS.register("dialogue_needles")
def _dialogue(config: Any, inputs: GeneratorInputs) -> Generator:
    from qwenlong.synth.dialogue.generator import DialogueNeedleGenerator

    return DialogueNeedleGenerator(config)
