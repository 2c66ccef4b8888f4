"""Generator C: multi-agent self-evolution (MASE, after SPELL) over document clusters.

from qwenlong.synth.mase import MaseConfig, MaseGenerator
generator = MaseGenerator(MaseConfig(), judge=None)
samples = list(generator.generate(corpus, GenerationContext(rng, llm=model)))
generator.mode, generator.stats.as_dict()
"""

from qwenlong.synth.mase.agents import FORMS, AnswerForm, find_json_object, parse_proposal
from qwenlong.synth.mase.clusters import DocumentCluster, build_clusters, entity_names
from qwenlong.synth.mase.config import (
    AgentSampling,
    ClusterConfig,
    MaseConfig,
    ProposerSampling,
)
from qwenlong.synth.mase.generator import MaseGenerator, MaseStats
from qwenlong.synth.mase.history import HistoryBuffer
from qwenlong.synth.mase.prompts import TASKS, TaskPrompt

__all__ = [
    "FORMS",
    "TASKS",
    "AgentSampling",
    "AnswerForm",
    "ClusterConfig",
    "DocumentCluster",
    "HistoryBuffer",
    "MaseConfig",
    "MaseGenerator",
    "MaseStats",
    "ProposerSampling",
    "TaskPrompt",
    "build_clusters",
    "entity_names",
    "find_json_object",
    "parse_proposal",
]
