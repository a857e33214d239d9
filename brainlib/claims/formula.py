"""Safe arithmetic formulas for claims files (a leaf module: imports nothing from brainlib).

Both the schema (which validates a ``formula`` check when a claims file is loaded) and the
audit (which evaluates it) need the same compiler; it lives here so that neither imports the
other. A formula is a Python expression restricted by an AST whitelist to numbers, named
variables, ``+ - * / **``, unary signs and a few functions (`FUNCTIONS`), so a claims file
cannot run code.
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Callable

Formula = Callable[[dict[str, float]], float]

_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}
#: Functions a formula may call.
FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "log": math.log, "exp": math.exp, "sqrt": math.sqrt,
    "mean": lambda *xs: sum(xs) / len(xs), "ceil": math.ceil, "floor": math.floor,
}


def parse_formula(text: str, names: set[str]) -> Formula:
    """Compile an arithmetic formula over `names` into a function of an environment dict.

    Args:
        text: the formula, e.g. ``"t / n"`` or ``"2 * iou / (1 + iou)"``.
        names: the variable names the formula may use.

    Returns:
        A function taking ``{name: value}`` and returning a float.

    Raises:
        SyntaxError: `text` is not a Python expression.
        ValueError: an unknown variable or anything beyond arithmetic is used.
    """
    tree = ast.parse(text, mode="eval")

    def build(node: ast.AST) -> Formula:
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            value = float(node.value)
            return lambda env: value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ValueError(f"unknown variable {node.id!r}")
            key = node.id
            return lambda env: env[key]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op, left, right = _BINOPS[type(node.op)], build(node.left), build(node.right)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = build(node.operand)
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            return lambda env: sign * inner(env)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in FUNCTIONS and not node.keywords:
            fn, args = FUNCTIONS[node.func.id], [build(a) for a in node.args]
            return lambda env: float(fn(*(a(env) for a in args)))
        raise ValueError(f"not allowed in a formula: {ast.dump(node)[:60]}")

    return build(tree)


__all__ = ["FUNCTIONS", "Formula", "parse_formula"]
