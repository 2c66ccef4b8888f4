"""qwenlong.evals: the task contract (prompts, extractors, scorers, judge, benchmarks, runner).

Importing any part of it registers the prompts evals sends (`qwenlong.evals.prompts`) in the
core prompt registry, lazily, so a config's `prompts:` can name them.
"""

from qwenlong.core.prompt_set import PROMPTS

EVALS_PROMPTS = {
    "single_pass": "qwenlong.evals.prompts:SINGLE_PASS",
    "single_pass_choice": "qwenlong.evals.prompts:SINGLE_PASS_CHOICE",
    "judge": "qwenlong.evals.prompts:JUDGE",
}
"""Prompt name -> "module:attribute" of its `PromptSpec`."""

for _name, _target in EVALS_PROMPTS.items():
    if _name not in PROMPTS:  # a re-import (importlib.reload) must not register twice
        PROMPTS.add_lazy(_name, _target)
