"""Rule metrics: `(sample, output) -> Score`, by name.

`METRICS` maps a name to a metric class; the class's fields are the metric's options, so
`make_scorer("cover_em", require_think=True)` validates and documents its options like any
config. Entries are lazy: importing this package imports no metric module.

| name           | source                         | what it computes                               |
|----------------|--------------------------------|------------------------------------------------|
| cover_em       | QwenLong-L1/L1.5 (paper)       | normalised gold inside the extracted answer    |
| sub_em         | QwenLong-L1 reward             | gold inside answer, or answer inside gold      |
| longbench_f1   | LongBench v1 eval.py (official)| token F1 on the raw prediction, max over golds |
| longbench_v2   | LongBench v2 pred.py (official)| extracted letter == gold letter                |
| mrcr           | openai/mrcr card (official)    | prefix gate, then SequenceMatcher ratio        |
| docmath        | DocMath-Eval (official compare)| lenient numeric match                          |
| docmath_strict | ours                           | abs(p - g) <= rel_tol * abs(g)                 |
| corpusqa       | CorpusQA extraction + cover-EM | rule half of the paper's judged score          |
"""

from __future__ import annotations

from typing import Any

from qwenlong.core.registry import Registry
from qwenlong.evals.interfaces import Scorer
from qwenlong.evals.metrics.common import RuleMetric, build_metric

METRICS: Registry[type[RuleMetric]] = Registry("metric")

_PACKAGE = "qwenlong.evals.metrics"
METRICS.add_lazy("cover_em", f"{_PACKAGE}.cover:CoverEm")
METRICS.add_lazy("sub_em", f"{_PACKAGE}.cover:SubEm")
METRICS.add_lazy("longbench_f1", f"{_PACKAGE}.longbench:LongBenchF1")
METRICS.add_lazy("longbench_v2", f"{_PACKAGE}.longbench:LongBenchV2")
METRICS.add_lazy("mrcr", f"{_PACKAGE}.mrcr:Mrcr")
METRICS.add_lazy("docmath", f"{_PACKAGE}.docmath:DocMath")
METRICS.add_lazy("docmath_strict", f"{_PACKAGE}.docmath:DocMathStrict")
METRICS.add_lazy("corpusqa", f"{_PACKAGE}.corpusqa:CorpusQa")


def make_scorer(name: str, **options: Any) -> Scorer:
    """The metric `name` with `options`; unknown names or options raise a one-line ConfigError."""
    return build_metric(METRICS.get(name), name, options)


__all__ = ["METRICS", "RuleMetric", "make_scorer"]
