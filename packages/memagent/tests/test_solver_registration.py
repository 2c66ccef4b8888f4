"""Importing qwenlong.memagent adds its solvers to the evals registry, lazily and only once."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import qwenlong.memagent
from qwenlong.evals.solver import SOLVERS
from qwenlong.memagent.solver import MemAgentSolver, RoutedSolver

FRESH_IMPORT = """
import json, sys
import qwenlong.memagent
from qwenlong.evals.solver import SOLVERS
loaded_before = "qwenlong.memagent.solver" in sys.modules
factory = SOLVERS.get("memagent")
print(json.dumps({
    "names": SOLVERS.names(),
    "loaded_before_get": loaded_before,
    "factory": f"{factory.__module__}:{factory.__name__}",
}))
"""


def test_a_fresh_interpreter_finds_the_solvers_after_importing_memagent() -> None:
    """As a notebook would: nothing but `import qwenlong.memagent`, then the registry."""
    run = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORT], capture_output=True, text=True, check=True
    )
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found == {
        "names": ["memagent", "routed", "single_pass"],
        "loaded_before_get": False,  # lazy: the agent loads when a run asks for it
        "factory": "qwenlong.memagent.solver:MemAgentSolver",
    }


def test_importing_memagent_again_registers_nothing_twice() -> None:
    importlib.reload(qwenlong.memagent)  # runs the registration a second time
    assert SOLVERS.names().count("memagent") == 1
    assert SOLVERS.get("memagent") is MemAgentSolver
    assert SOLVERS.get("routed") is RoutedSolver
