"""A safe evaluator for the arithmetic the official DocMath scorer hands to Python's `eval`.

DocMath-Eval's `normalize` ends with `eval(prediction)` on model text. We never execute model
text, yet we must agree with `eval` on every answer a model plausibly writes: "3/4", "1.5*2",
"-(2+3)", "1_000", "0x1F", "5e-3", "2**10", "math.pow(10, 3)" (the official rewrite of `10^3`),
"1, 2" (a tuple, which the official code then counts as wrong), "01" (a SyntaxError there).
Getting Python's number syntax exactly right by hand is error-prone (leading zeros, underscores,
imaginary literals, implicit tuples, operator precedence of `-2**2`), so we let Python's own
parser build the syntax tree (`ast.parse` parses, it runs nothing) and evaluate a whitelist of
node kinds ourselves with Python's operator functions, so every value and every error is the one
`eval` would produce.

What `eval` would do that we do not:
- names other than the whitelisted `math` functions and constants and the builtins `abs`,
  `round`, `min`, `max`, `pow`, `int`, `float`, `sum`: we raise `Unsupported`, which callers
  treat like the `NameError` that `eval` raises for most names. (The official `eval` also sees
  its module's globals, e.g. `np`, `re`; "np.pi" is 3.14... there and unsupported here.)
- attribute access other than `math.<whitelisted>` and a number's `.real`/`.imag`,
  comprehensions, lambdas, keyword arguments, starred arguments: `Unsupported`.
- results too large to compute cheaply (integer powers or shifts beyond `MAX_INT_BITS` bits,
  sequences repeated beyond `MAX_SEQUENCE`): `TooLarge`. `eval` would build them; DocMath's
  comparison then fails on them (an int that large cannot become a float), so callers count
  them as "not a number", which is the official outcome.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_INT_BITS = 1_000_000
"""Largest integer result of `**` or `<<` we compute (about 300K digits). Ours."""
MAX_SEQUENCE = 1_000_000
"""Largest str/tuple/list we build by repetition (`"ab" * n`). Ours."""


class Unsupported(Exception):
    """The expression uses syntax or a name outside the whitelist."""


class TooLarge(Exception):
    """The result would be too large to compute; `eval` would have built it."""


def _checked_pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    if (
        modulus is None
        and _is_int(base)
        and _is_int(exponent)
        and abs(base) > 1
        and exponent > MAX_INT_BITS / math.log2(abs(base))
    ):
        raise TooLarge("integer power")
    return pow(base, exponent) if modulus is None else pow(base, exponent, modulus)


def _checked_lshift(value: Any, shift: Any) -> Any:
    if _is_int(value) and _is_int(shift) and value != 0 and shift > MAX_INT_BITS:
        raise TooLarge("integer shift")
    return operator.lshift(value, shift)


def _checked_mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        repeats = isinstance(seq, (str, bytes, tuple, list)) and _is_int(count)
        if repeats and len(seq) * count > MAX_SEQUENCE:
            raise TooLarge("sequence repetition")
    return operator.mul(left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _checked_mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _checked_pow,
    ast.LShift: _checked_lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
    ast.MatMult: operator.matmul,
}

_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}

_MATH_NAMES = ("pow", "sqrt", "exp", "log", "log10", "log2", "fabs", "floor", "ceil", "trunc")
_MATH_CONSTANTS = ("pi", "e", "tau", "inf", "nan")
MATH_WHITELIST: dict[str, Any] = {n: getattr(math, n) for n in _MATH_NAMES + _MATH_CONSTANTS}
"""`math.<name>` an expression may use: pure numeric functions and constants."""


NUMBER_ATTRIBUTES = frozenset({"real", "imag"})
"""Attributes of a number an expression may read ("(3+4j).real")."""


class _MathNamespace:
    """Stands for the `math` module inside expressions; only whitelisted attributes resolve."""

    def __repr__(self) -> str:
        return "<module 'math'>"


_MATH = _MathNamespace()

NAMES: dict[str, Any] = {
    "math": _MATH,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "pow": _checked_pow,
    "int": int,
    "float": float,
    "sum": sum,
}
"""Names an expression may use. Values are the real builtins except `pow` (size-checked)."""


def evaluate(source: str) -> Any:
    """Evaluate `source` as `eval` would, within the whitelist; return the Python value.

    Raises whatever `eval` would raise for these expressions (SyntaxError, ZeroDivisionError,
    OverflowError, TypeError, ValueError, RecursionError) plus `Unsupported` and `TooLarge`.
    Like `eval` on a string, leading spaces and tabs are ignored.
    """
    tree = ast.parse(source.lstrip(" \t"), mode="eval")
    return _eval(tree.body)


def _eval(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand))
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise Unsupported(f"{type(node).__name__} expressions are not evaluated")
    return handler(node)


def _bool_op(node: ast.BoolOp) -> Any:
    result: Any = None
    for value_node in node.values:
        result = _eval(value_node)
        if isinstance(node.op, ast.And) != bool(result):
            return result  # `and` stops at the first falsy value, `or` at the first truthy one
    return result


def _compare(node: ast.Compare) -> Any:
    left = _eval(node.left)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        compare = _COMPARE.get(type(op))
        if compare is None:
            raise Unsupported(f"comparison {type(op).__name__}")
        right = _eval(right_node)
        if not compare(left, right):
            return False
        left = right
    return True


def _name(node: ast.Name) -> Any:
    if node.id not in NAMES:
        raise Unsupported(f"name {node.id!r}")
    return NAMES[node.id]


def _attribute(node: ast.Attribute) -> Any:
    owner = _eval(node.value)
    if owner is _MATH and node.attr in MATH_WHITELIST:
        return MATH_WHITELIST[node.attr]
    if isinstance(owner, (int, float, complex)) and node.attr in NUMBER_ATTRIBUTES:
        return getattr(owner, node.attr)
    raise Unsupported(f"attribute {node.attr!r}")


def _if_expression(node: ast.IfExp) -> Any:
    return _eval(node.body) if _eval(node.test) else _eval(node.orelse)


def _subscript(node: ast.Subscript) -> Any:
    container = _eval(node.value)
    if not isinstance(container, (str, bytes, tuple, list, dict)):
        raise Unsupported(f"subscript of {type(container).__name__}")
    index = node.slice
    if isinstance(index, ast.Slice):
        parts = (index.lower, index.upper, index.step)
        key: Any = slice(*(None if part is None else _eval(part) for part in parts))
    else:
        key = _eval(index)
    return container[key]


def _call(node: ast.Call) -> Any:
    if node.keywords:
        raise Unsupported("keyword arguments")
    function = _eval(node.func)
    if not callable(function):
        raise TypeError(f"{type(function).__name__!r} object is not callable")
    args = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise Unsupported("starred arguments")
        args.append(_eval(arg))
    return function(*args)


def _sequence(node: ast.Tuple | ast.List | ast.Set) -> Any:
    if any(isinstance(element, ast.Starred) for element in node.elts):
        raise Unsupported("starred elements")
    values = [_eval(element) for element in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(values)
    return values if isinstance(node, ast.List) else set(values)


def _dict(node: ast.Dict) -> Any:
    if any(key is None for key in node.keys):
        raise Unsupported("dict unpacking")
    keys = [key for key in node.keys if key is not None]
    return {_eval(k): _eval(v) for k, v in zip(keys, node.values, strict=True)}


_HANDLERS: dict[type[ast.expr], Callable[[Any], Any]] = {
    ast.BoolOp: _bool_op,
    ast.Compare: _compare,
    ast.Name: _name,
    ast.Attribute: _attribute,
    ast.Call: _call,
    ast.Tuple: _sequence,
    ast.List: _sequence,
    ast.Set: _sequence,
    ast.Dict: _dict,
    ast.IfExp: _if_expression,
    ast.Subscript: _subscript,
}
