"""Parameter constraints: ``end > start``, ``min_temperature <= max_temperature`` (as OMOTES declares them).

A constraint relates two parameters of one workflow type. ``@workflow(constraints=[...])`` parses
and checks each one at import (both parameters declared, comparable types), and the checked
relation travels on the left parameter's ``ParamSpec.constraints``, so the gateway, the worker
and any client read the same rule from the type's declaration.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workmesh.v1 import common_pb2

T = common_pb2.ParamType
Op = common_pb2.ConstraintOp

# Written form -> (proto op, Python comparison, words for error messages).
OPS: dict[str, tuple[common_pb2.ConstraintOp, Callable[[Any, Any], bool], str]] = {
    ">": (Op.CONSTRAINT_OP_GREATER, operator.gt, "greater than"),
    ">=": (Op.CONSTRAINT_OP_GREATER_EQUAL, operator.ge, "greater than or equal to"),
    "<": (Op.CONSTRAINT_OP_LESS, operator.lt, "less than"),
    "<=": (Op.CONSTRAINT_OP_LESS_EQUAL, operator.le, "less than or equal to"),
    "==": (Op.CONSTRAINT_OP_EQUAL, operator.eq, "equal to"),
}
SYMBOLS: dict[int, str] = {op: symbol for symbol, (op, _, _) in OPS.items()}
_Compare = tuple[Callable[[Any, Any], bool], str]
_BY_OP: dict[int, _Compare] = {op: (compare, words) for op, compare, words in OPS.values()}
_FORM = re.compile(r"\s*([A-Za-z_]\w*)\s*(>=|<=|==|>|<)\s*([A-Za-z_]\w*)\s*")

# Values of these families compare with each other (ints with floats; strings with enums).
_FAMILY: dict[int, str] = {
    T.PARAM_TYPE_INT: "number",
    T.PARAM_TYPE_FLOAT: "number",
    T.PARAM_TYPE_DATETIME: "datetime",
    T.PARAM_TYPE_DURATION: "duration",
    T.PARAM_TYPE_STRING: "string",
    T.PARAM_TYPE_ENUM: "string",
    T.PARAM_TYPE_BOOL: "bool",
    T.PARAM_TYPE_BYTES: "bytes",
}
_ORDERED = frozenset({"number", "datetime", "duration"})


def describe(name: str, op: int, other: str) -> str:
    """The written form of a constraint, e.g. ``"end > start"``."""
    return f"{name} {SYMBOLS.get(op, '?')} {other}"


def compile_constraints(
    workflow: str, constraints: Sequence[str], types: Mapping[str, int]
) -> dict[str, list[common_pb2.ParamConstraint]]:
    """Parse and check a type's constraints against its parameter types.

    Args:
        workflow: the type name (for messages).
        constraints: written constraints such as ``"end > start"``.
        types: the declared parameters' ``ParamType`` by name.

    Returns:
        The constraints by their left parameter's name.

    Raises:
        ValueError, TypeError: a malformed constraint, an undeclared parameter, or types that do
            not compare (the message names the constraint and what to change).
    """
    out: dict[str, list[common_pb2.ParamConstraint]] = {}
    seen: set[tuple[str, int, str]] = set()
    for text in constraints:
        if not isinstance(text, str):
            raise TypeError(f"workflow {workflow!r}: a constraint must be a string like 'end > start', got {text!r}")
        match = _FORM.fullmatch(text)
        if match is None:
            raise ValueError(
                f"workflow {workflow!r}: constraint {text!r} must read '<param> <op> <param>' "
                f"with op one of {', '.join(OPS)} (e.g. 'end > start')"
            )
        left, symbol, right = match.groups()
        for name in (left, right):
            if name not in types:
                known = ", ".join(sorted(types)) or "none"
                raise ValueError(
                    f"workflow {workflow!r}: constraint {text!r} names parameter {name!r}, "
                    f"which is not declared; declared: {known}"
                )
        if left == right:
            raise ValueError(f"workflow {workflow!r}: constraint {text!r} compares {left!r} with itself")
        families = _FAMILY.get(types[left]), _FAMILY.get(types[right])
        if families[0] != families[1]:
            raise TypeError(
                f"workflow {workflow!r}: constraint {text!r} compares a {families[0]} parameter ({left!r}) "
                f"with a {families[1]} one ({right!r}); both sides must be numbers, datetimes or durations"
            )
        op = OPS[symbol][0]
        if symbol != "==" and families[0] not in _ORDERED:
            raise TypeError(
                f"workflow {workflow!r}: constraint {text!r}: {families[0]} parameters only support '==' "
                "(ordering applies to numbers, datetimes and durations)"
            )
        if (left, op, right) in seen:
            raise ValueError(f"workflow {workflow!r}: constraint {text!r} is declared twice")
        seen.add((left, op, right))
        out.setdefault(left, []).append(common_pb2.ParamConstraint(op=op, other=right))
    return out


def comparison(op: int) -> tuple[Callable[[Any, Any], bool], str] | None:
    """The Python comparison and its words for a proto op, or None for an unknown op."""
    return _BY_OP.get(op)


__all__ = ["OPS", "comparison", "compile_constraints", "describe"]
