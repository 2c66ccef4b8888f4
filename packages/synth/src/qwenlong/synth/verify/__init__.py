"""Verification: knowledge-grounding and contextual-robustness checks, pass rates as difficulty."""

from qwenlong.synth.verify.checks import (
    CHECKS,
    CheckResult,
    VerifyResult,
    grounding_check,
    robustness_check,
    verify_samples,
)
from qwenlong.synth.verify.config import VerifyConfig
from qwenlong.synth.verify.passk import PassRecord, count_passes, measure_passes

__all__ = [
    "CHECKS",
    "CheckResult",
    "PassRecord",
    "VerifyConfig",
    "VerifyResult",
    "count_passes",
    "grounding_check",
    "measure_passes",
    "robustness_check",
    "verify_samples",
]
