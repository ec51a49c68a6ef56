"""Validation of job parameters against a workflow type's parameter specs.

Shared by the gateway (every SubmitJob) and the worker (every Execute), so both apply the same
rules: unknown keys, missing required values, wrong types, bounds, allowed values and the
constraints between two parameters (``end > start``, on ``ParamSpec.constraints``) are refused
with an :class:`~workmesh.services.core.errors.InvalidArgument` naming ``params.<name>`` and the rule;
values sent as strings are parsed by the parameter's type; absent values get their defaults.

A validator is compiled once per spec list (:class:`ParamsValidator`); :func:`validate_params`
keeps recently compiled ones, so callers on the hot path need no cache of their own.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import common_pb2
from workmesh.workers import _convert as cv
from workmesh.workers._constraints import comparison, describe

__all__ = ["ParamsValidator", "validate_params", "to_python", "from_python"]

T = common_pb2.ParamType
ParamValue = common_pb2.ParamValue


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


class _Rule:
    """The compiled checks of one parameter."""

    __slots__ = ("name", "field", "type", "required", "default", "min", "max", "allowed", "check")

    def __init__(self, spec: common_pb2.ParamSpec) -> None:
        self.name = spec.name
        self.field = f"params.{spec.name}"
        self.type = spec.type
        self.default = spec.default if spec.HasField("default") else None
        if self.default is not None and self.default.WhichOneof("kind") is None:
            self.default = None
        self.required = spec.required and self.default is None
        self.min = spec.min if spec.HasField("min") else None
        self.max = spec.max if spec.HasField("max") else None
        self.allowed = tuple(spec.allowed)
        check = _CHECKS.get(spec.type)
        if check is None:
            raise InvalidArgument(self.field, f"parameter type {spec.type} is not supported")
        self.check: Callable[[_Rule, ParamValue], ParamValue] = check

    def fail(self, rule: str) -> InvalidArgument:
        return InvalidArgument(self.field, rule)

    def wrong_type(self, value: ParamValue) -> InvalidArgument:
        return self.fail(f"expected {cv.TYPE_NAMES[self.type]}, got {cv.describe(value)}")

    def bounds(self, number: float, unit: str = "") -> None:
        if self.min is not None and number < self.min:
            raise self.fail(f"must be ≥ {_fmt(self.min)}{unit}")
        if self.max is not None and number > self.max:
            raise self.fail(f"must be ≤ {_fmt(self.max)}{unit}")

    def parse(self, parser: Callable[[str], Any], text: str) -> Any:
        try:
            return parser(text)
        except cv.ParseError as exc:
            raise self.fail(str(exc)) from None
        except (ValueError, OverflowError, ArithmeticError):
            # Whatever a parser trips over in a client's text is that client's mistake.
            raise self.fail(
                f"cannot read {cv.describe(ParamValue(string_value=text))} as {cv.TYPE_NAMES[self.type]}"
            ) from None


def _check_string(rule: _Rule, value: ParamValue) -> ParamValue:
    if value.WhichOneof("kind") != "string_value":
        raise rule.wrong_type(value)
    return value


def _check_enum(rule: _Rule, value: ParamValue) -> ParamValue:
    if value.WhichOneof("kind") != "string_value":
        raise rule.wrong_type(value)
    if value.string_value not in rule.allowed:
        raise rule.fail(f"must be one of {', '.join(rule.allowed)}; got {value.string_value!r}")
    return value


def _check_bool(rule: _Rule, value: ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return value
    if kind == "string_value":
        return ParamValue(bool_value=rule.parse(cv.parse_bool, value.string_value))
    raise rule.wrong_type(value)


def _check_int(rule: _Rule, value: ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind == "int_value":
        number = value.int_value
    elif kind == "string_value":
        number = rule.parse(cv.parse_int, value.string_value)
        value = ParamValue(int_value=number)
    else:
        raise rule.wrong_type(value)
    if rule.min is not None or rule.max is not None:
        rule.bounds(number)
    return value


def _check_float(rule: _Rule, value: ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind == "float_value":
        number = value.float_value
        if not math.isfinite(number):
            raise rule.fail("must be a finite number")
    elif kind == "int_value":  # widening an int is exact enough and what a user means
        number = float(value.int_value)
        value = ParamValue(float_value=number)
    elif kind == "string_value":
        number = rule.parse(cv.parse_float, value.string_value)
        value = ParamValue(float_value=number)
    else:
        raise rule.wrong_type(value)
    if rule.min is not None or rule.max is not None:
        rule.bounds(number)
    return value


def _check_datetime(rule: _Rule, value: ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind == "datetime_value":
        problem = cv.timestamp_problem(value.datetime_value)
        if problem:
            raise rule.fail(problem)
        return value
    if kind == "string_value":
        return cv.datetime_value(rule.parse(cv.parse_datetime, value.string_value))
    raise rule.wrong_type(value)


def _check_duration(rule: _Rule, value: ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind == "duration_value":
        problem = cv.duration_problem(value.duration_value)
        if problem:
            raise rule.fail(problem)
        seconds = cv.seconds_of(value)
    elif kind in ("string_value", "int_value", "float_value"):  # plain numbers are seconds
        if kind == "string_value":
            seconds = rule.parse(cv.parse_duration, value.string_value)
        else:
            seconds = float(getattr(value, kind))
        if not math.isfinite(seconds) or abs(seconds) > cv.DURATION_MAX_SECONDS:
            raise rule.fail(
                f"must be a finite duration of at most {cv.DURATION_MAX_SECONDS} seconds (10,000 years) either way"
            )
        value = cv.duration_value(seconds)
    else:
        raise rule.wrong_type(value)
    if rule.min is not None or rule.max is not None:
        rule.bounds(seconds, "s")
    return value


def _check_bytes(rule: _Rule, value: ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind == "bytes_value":
        return value
    if kind == "string_value":  # a string stands for its UTF-8 bytes
        return ParamValue(bytes_value=value.string_value.encode())
    raise rule.wrong_type(value)


_CHECKS: dict[int, Callable[[_Rule, ParamValue], ParamValue]] = {
    T.PARAM_TYPE_STRING: _check_string,
    T.PARAM_TYPE_ENUM: _check_enum,
    T.PARAM_TYPE_BOOL: _check_bool,
    T.PARAM_TYPE_INT: _check_int,
    T.PARAM_TYPE_FLOAT: _check_float,
    T.PARAM_TYPE_DATETIME: _check_datetime,
    T.PARAM_TYPE_DURATION: _check_duration,
    T.PARAM_TYPE_BYTES: _check_bytes,
}


class ParamsValidator:
    """The parameter rules of one workflow type, compiled once for repeated validation.

    Args:
        specs: the type's parameter specs.
    """

    __slots__ = ("_rules", "_order", "_known", "_defaults", "_relations")

    def __init__(self, specs: Sequence[common_pb2.ParamSpec]) -> None:
        self._order = tuple(_Rule(spec) for spec in specs)
        self._rules = {rule.name: rule for rule in self._order}
        self._known = ", ".join(sorted(self._rules)) or "none (this type takes no parameters)"
        # (left, right, compare, words, written form). A constraint naming an undeclared
        # parameter or an unknown op (a worker built without this SDK's import-time checks)
        # is left out: it is the type's mistake, not the client's.
        self._relations = tuple(
            (spec.name, c.other, found[0], found[1], describe(spec.name, c.op, c.other))
            for spec in specs
            for c in spec.constraints
            if c.other in self._rules and c.other != spec.name and (found := comparison(c.op)) is not None
        )

    def validate(self, values: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """Check `values`, parse strings, fill defaults; see :func:`validate_params`."""
        rules = self._rules
        out: dict[str, ParamValue] = {}
        for key, value in values.items() if values else ():
            rule = rules.get(key)
            if rule is None:
                raise InvalidArgument(f"params.{key}", f"unknown parameter; known: {self._known}")
            if value.WhichOneof("kind") is None:  # an empty value means "not given"
                continue
            out[key] = rule.check(rule, value)
        if len(out) != len(rules):
            for rule in self._order:
                if rule.name not in out:
                    if rule.default is not None:
                        out[rule.name] = rule.default
                    elif rule.required:
                        raise rule.fail("required parameter is missing")
        if self._relations:
            self._check_relations(out)
        return out

    def _check_relations(self, out: Mapping[str, ParamValue]) -> None:
        rules = self._rules
        for left, right, compare, words, written in self._relations:
            a, b = out.get(left), out.get(right)
            if a is None or b is None:  # an optional parameter left out: nothing to compare
                continue
            x, y = to_python(rules[left].type, a), to_python(rules[right].type, b)
            try:
                holds = compare(x, y)
            except TypeError:  # e.g. an int with a string: a type whose declaration mixes them
                holds = False
            if not holds:
                raise InvalidArgument(
                    f"params.{left}",
                    f"must be {words} params.{right} (constraint {written}); got {left}={_show(x)}, {right}={_show(y)}",
                )


def _show(obj: object) -> str:
    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return f"<{len(obj)} bytes>"
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


_CACHE: dict[bytes, ParamsValidator] = {}
_CACHE_MAX = 512


def validate_params(specs: Sequence[common_pb2.ParamSpec], values: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """Validate job parameters against a type's specs.

    Fills defaults, parses ``string_value`` for non-string types (ints, floats, bools such as
    "yes"/"0", ISO 8601 datetimes — naive ones are UTC —, durations such as "90s", "1h30m",
    "PT1H30M" or plain seconds), and checks types, bounds, allowed values, unknown keys and
    required parameters.

    Args:
        specs: the workflow type's parameter specs.
        values: the parameters a client sent, by name.

    Returns:
        The typed values by name, defaults included. Values may be the input messages or the
        specs' default messages themselves: copy before mutating.

    Raises:
        InvalidArgument: with field ``params.<name>`` and the broken rule.
    """
    if not specs:
        if values:
            return ParamsValidator(specs).validate(values)  # raises for the first unknown key
        return {}
    # Keyed by content, not identity: a spec list may be mutated or rebuilt between calls, and
    # serialising a few small messages costs far less than compiling them again.
    key = b"".join(spec.SerializeToString(deterministic=True) + b"\x00\x01" for spec in specs)
    validator = _CACHE.get(key)
    if validator is None:
        validator = ParamsValidator(specs)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = validator
    return validator.validate(values)


_FLOAT = T.PARAM_TYPE_FLOAT


def _type_of(spec_or_type: Any) -> int:
    return spec_or_type if isinstance(spec_or_type, int) else spec_or_type.type


def to_python(spec: Any, value: ParamValue) -> object:
    """The Python object of a (validated) value.

    Args:
        spec: a ``ParamSpec``, a :class:`~workmesh.workers.Param` or a ``ParamType`` value.
        value: the value.

    Returns:
        ``str`` (string, enum), ``bool``, ``int``, ``float``, ``datetime`` (UTC-aware),
        ``timedelta``, ``bytes``; ``None`` for an empty value.
    """
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "datetime_value":
        return cv.to_datetime(value)
    if kind == "duration_value":
        return _dt.timedelta(seconds=value.duration_value.seconds, microseconds=value.duration_value.nanos / 1000)
    obj = getattr(value, kind)
    if kind == "int_value" and _type_of(spec) == _FLOAT:
        return float(obj)
    return obj


def from_python(spec_or_type: Any, obj: object) -> ParamValue:
    """A ParamValue for a Python object, typed by the spec (or ``ParamType``).

    Strings are kept as ``string_value`` for non-string types, to be parsed by validation.

    Raises:
        TypeError: when the object does not fit the type.
    """
    ptype = _type_of(spec_or_type)
    if isinstance(obj, str):
        return ParamValue(string_value=obj)
    if ptype == T.PARAM_TYPE_BOOL and isinstance(obj, bool):
        return ParamValue(bool_value=obj)
    if ptype == T.PARAM_TYPE_INT and isinstance(obj, int) and not isinstance(obj, bool):
        return ParamValue(int_value=obj)
    if ptype == T.PARAM_TYPE_FLOAT and isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return ParamValue(float_value=float(obj))
    if ptype == T.PARAM_TYPE_DATETIME and isinstance(obj, _dt.datetime):
        return cv.datetime_value(obj)
    if ptype == T.PARAM_TYPE_DURATION:
        if isinstance(obj, _dt.timedelta):
            return cv.duration_value(obj.total_seconds())
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            return cv.duration_value(float(obj))
    if ptype == T.PARAM_TYPE_BYTES and isinstance(obj, (bytes, bytearray, memoryview)):
        return ParamValue(bytes_value=bytes(obj))
    name = cv.TYPE_NAMES.get(ptype, str(ptype))
    raise TypeError(f"a {type(obj).__name__} value does not fit a {name} parameter")
