"""DocMath-Eval's normalisation of an answer string to a number, without `eval`.

Source: yale-nlp/DocMath-Eval, utils/evaluation_utils.py `normalize` (read at the repository's
newest snapshot). The official function rewrites the string in a fixed order and then calls
`eval`; `parse_docmath_number` performs the same rewrites in the same order and hands the result
to `qwenlong.evals.arith.evaluate`, which computes what `eval` would, safely. Steps, in order:

1. strip whitespace, then trailing periods;
2. delete the substrings "£", "€", "¥", "million", "billion", "thousand", "US", "USD", "RMB"
   (case-sensitive, in that order: "USD" has already lost its "US" when "USD" is tried, so
   "5 USD" becomes "5 D"; "thousands" becomes "s"; "Million" stays);
3. keep what follows the last "=", then the last "≈" (each stripped);
4. delete backticks, "%", "$" and "°" (so "12%" is 12, not 0.12);
5. "true"/"yes" -> True, "false"/"no" -> False (exact, lower-case); then any text containing
   "True" (else "False") becomes that boolean. Booleans compare as the numbers 1 and 0;
6. delete "approximately" (then strip); keep what precedes the first " or ";
7. drop a unit word after or before the number ("12 apples", "USD 12") and one or two
   non-digit characters after or before it ("12m", "~12"), by four anchored patterns applied in
   turn; these run on the unstripped string, so a trailing space left by step 2 matters;
8. "10^k" -> math.pow(10, k); " x " and " × " -> "*"; a well-formed thousands-separated number
   ("1,234,567.5") loses its commas ("1,2" does not, and evaluates to a tuple);
9. an option letter "(a)".."(d)" anywhere makes the answer that option's string;
10. an empty string becomes "0"; then evaluate.

Outcomes, as the official scorer sees them:
- "number": an int, float or bool (a complex result keeps its real part);
- "non_number": a string, tuple, list, set, dict, None or anything else `eval` returned; the
  official comparison counts these wrong;
- "unparsed": evaluation raised (syntax error, unknown name, division by zero, ...). The
  official code then uses the number 0 ("TO CHECK" in its source), so such an answer is right
  exactly when the gold answer is 0. `DocMathNumber.value` is 0 for these.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from qwenlong.evals.arith import TooLarge, evaluate

_DELETED_WORDS = ("£", "€", "¥", "million", "billion", "thousand", "US", "USD", "RMB")
_DELETED_SYMBOLS = ("`", "%", "$", "°")
_BOOLEAN_WORDS = {"true": "True", "yes": "True", "false": "False", "no": "False"}

_NUMBER = r"[-+]?(?:[\d,]*\.*\d+)"
_UNIT_PATTERNS = (
    re.compile(rf"({_NUMBER}) [^0-9 ]+$"),  # number, space, unit word
    re.compile(rf"[^0-9 ]+ ({_NUMBER})$"),  # unit word, space, number
    re.compile(rf"({_NUMBER})[^\d]{{1,2}}$"),  # number, then one or two non-digits
    re.compile(r"[^-+\d]{1,2}((?:[\d,]*\.*\d+))$"),  # one or two non-digits, then number
)
_POWER_OF_TEN = re.compile(r"10\^(-?\d+)")
_THOUSANDS_NUMBER = re.compile(r"[-+]?(\d{1,3}(,\d{3})*|(\d+))(\.\d+)?$")
_OPTION = re.compile(r"\([a-d]\)")

MAX_NUMBER_DIGITS = 4000
"""Integers with more digits are reported as None by `format_number` (Python refuses to print
ints past 4300 digits by default); the official comparison cannot use them either."""

Outcome = Literal["number", "non_number", "unparsed"]


@dataclass(frozen=True)
class DocMathNumber:
    """What DocMath's normalisation made of an answer string."""

    outcome: Outcome
    value: int | float | None
    """The number compared with the gold: the parsed number, 0 when unparsed (the official
    fallback), None for a non-number."""
    rewritten: str
    """The string after the official rewrites, i.e. what `eval` would have been given."""


def rewrite_docmath_answer(text: str) -> str:
    """Steps 1-10 of the module docstring: the string the official code passes to `eval`."""
    s = text.strip().rstrip(".")
    for word in _DELETED_WORDS:
        s = s.replace(word, "")
    for separator in ("=", "≈"):
        if separator in s:
            s = s.split(separator)[-1].strip()
    for symbol in _DELETED_SYMBOLS:
        s = s.replace(symbol, "")
    s = _BOOLEAN_WORDS.get(s, s)
    if "True" in s:
        s = "True"
    elif "False" in s:
        s = "False"
    if "approximately" in s:
        s = s.replace("approximately", "").strip()
    s = s.split(" or ")[0]
    for pattern in _UNIT_PATTERNS:
        match = pattern.match(s)
        if match:
            s = match.group(1)
    if "10^" in s:
        s = _POWER_OF_TEN.sub(r"math.pow(10, \1)", s)
    s = s.replace(" x ", "*").replace(" × ", "*")
    if _THOUSANDS_NUMBER.match(s):
        s = s.replace(",", "")
    option = _OPTION.search(s)
    if option:
        s = f'"{option.group(0)}"'
    return s or "0"


def parse_docmath_number(text: str) -> DocMathNumber:
    """Normalise `text` the official DocMath way and classify the result (module docstring)."""
    rewritten = rewrite_docmath_answer(text)
    try:
        value = evaluate(rewritten)
    except TooLarge:
        return DocMathNumber("non_number", None, rewritten)
    except Exception:  # the official `eval` is wrapped in `except Exception`; we mirror it
        return DocMathNumber("unparsed", 0, rewritten)
    if isinstance(value, complex):
        value = value.real
    if isinstance(value, (int, float)):
        return DocMathNumber("number", value, rewritten)
    return DocMathNumber("non_number", None, rewritten)


def format_number(value: int | float) -> str | None:
    """The number as a decimal string: ints exactly, floats by `repr`, booleans as 1 and 0."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        if value != 0 and math.log10(abs(value)) >= MAX_NUMBER_DIGITS:
            return None
        return str(value)
    return repr(value)
