"""Solvers that live outside evals, added to its `SOLVERS` registry by the app layer.

evals defines the `Solver` protocol and the registry but may not import memagent (memagent
depends on evals), so the memory agent is registered here, lazily: `solver: memagent` or
`solver: routed` in an eval YAML imports qwenlong.memagent only when a run asks for it.
"""

from __future__ import annotations

from qwenlong.evals.solver import SOLVERS

APP_SOLVERS = {
    "memagent": "qwenlong.memagent.solver:MemAgentSolver",
    "routed": "qwenlong.memagent.solver:RoutedSolver",
}
"""Registry name -> "module:attribute" of the solver factory."""


def register_solvers() -> None:
    """Add the app-layer solvers to `SOLVERS`; calling it again changes nothing."""
    for name, target in APP_SOLVERS.items():
        if name not in SOLVERS:
            SOLVERS.add_lazy(name, target)
