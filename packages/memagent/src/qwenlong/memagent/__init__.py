"""qwenlong.memagent: the memory agent, and its solvers in the evals `SOLVERS` registry.

evals defines the `Solver` protocol and the registry but may not import memagent (memagent
depends on evals), so memagent adds its solvers when it is imported: after `import
qwenlong.memagent`, `run_eval` (from the CLI or a notebook) accepts `solver: memagent` and
`solver: routed`. It also registers the agent's prompts (`qwenlong.memagent.prompts`) in the core
prompt registry, so a config's `prompts:` can name them. The entries are lazy, so the agent's
modules load only when a run asks for one.
"""

from qwenlong.core.prompt_set import PROMPTS
from qwenlong.evals.solver import SOLVERS

MEMAGENT_SOLVERS = {
    "memagent": "qwenlong.memagent.solver:MemAgentSolver",
    "routed": "qwenlong.memagent.solver:RoutedSolver",
}
"""Registry name -> "module:attribute" of the solver factory."""

for _name, _target in MEMAGENT_SOLVERS.items():
    if _name not in SOLVERS:  # a re-import (importlib.reload) must not register twice
        SOLVERS.add_lazy(_name, _target)

MEMAGENT_PROMPTS = {
    "memagent_update": "qwenlong.memagent.prompts:UPDATE",
    "memagent_final": "qwenlong.memagent.prompts:FINAL",
    "memagent_final_choice": "qwenlong.memagent.prompts:FINAL_CHOICE",
    "memagent_query_split": "qwenlong.memagent.prompts:QUERY_SPLIT",
}
"""Prompt name -> "module:attribute" of its `PromptSpec`."""

for _name, _target in MEMAGENT_PROMPTS.items():
    if _name not in PROMPTS:
        PROMPTS.add_lazy(_name, _target)
