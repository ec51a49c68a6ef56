"""Parameter declarations: ``Param.int("buildings", default=100, min=1)`` and friends.

Each declaration is checked when it is made (bounds, default inside its bounds, enum default among
the allowed values), so a broken workflow module fails at import with a message naming the
parameter, not at its first job.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import keyword
import math
from dataclasses import dataclass, field
from typing import Any

from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import common_pb2
from workmesh.workers import _convert as cv
from workmesh.workers.params import ParamsValidator, from_python, to_python

T = common_pb2.ParamType
_NUMERIC = (T.PARAM_TYPE_INT, T.PARAM_TYPE_FLOAT, T.PARAM_TYPE_DURATION)


def _bound(name: str, which: str, value: Any) -> builtins.float | None:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, builtins.bool) or not isinstance(value, (builtins.int, builtins.float)):
        raise TypeError(f"parameter {name!r}: {which} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"parameter {name!r}: {which} must be finite")
    return builtins.float(value)


@dataclass(frozen=True)
class Param:
    """The declaration of one workflow parameter. Build it with the class methods.

    Attributes:
        name: the parameter's name; also the handler's keyword argument.
        type: a ``common_pb2.ParamType`` value.
        default: the Python default (``None``: no default).
        min: inclusive lower bound (ints, floats; seconds for durations).
        max: inclusive upper bound.
        allowed: the allowed values of an enum.
        required: the client must send a value (true when there is no default, unless stated).
        description: shown to users.
        unit: display unit, e.g. ``"°C"``.
    """

    name: str
    type: common_pb2.ParamType
    default: Any = None
    min: builtins.float | None = None
    max: builtins.float | None = None
    allowed: tuple[str, ...] = ()
    required: builtins.bool = False
    description: str = ""
    unit: str = ""
    spec: common_pb2.ParamSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or len(name) > 64:
            raise ValueError(
                f"parameter name {name!r} must be a Python identifier of at most 64 characters "
                "(it is passed to the handler as a keyword argument)"
            )
        if self.type not in cv.TYPE_NAMES:
            raise ValueError(f"parameter {name!r}: unknown type {self.type!r}")
        if self.type not in _NUMERIC and (self.min is not None or self.max is not None):
            raise TypeError(f"parameter {name!r}: min/max only apply to int, float and duration parameters")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"parameter {name!r}: min ({self.min:g}) is greater than max ({self.max:g})")
        if self.type == T.PARAM_TYPE_ENUM:
            if not self.allowed or not all(isinstance(a, str) and a for a in self.allowed):
                raise ValueError(f"parameter {name!r}: an enum needs a non-empty list of non-empty strings")
            if len(set(self.allowed)) != len(self.allowed):
                raise ValueError(f"parameter {name!r}: allowed values repeat: {list(self.allowed)}")
        elif self.allowed:
            raise TypeError(f"parameter {name!r}: allowed values only apply to enum parameters")
        if self.required and self.default is not None:
            raise ValueError(f"parameter {name!r}: a required parameter cannot have a default")
        spec = common_pb2.ParamSpec(
            name=name,
            type=self.type,
            description=self.description,
            required=self.required,
            allowed=self.allowed,
            unit=self.unit,
        )
        if self.min is not None:
            spec.min = self.min
        if self.max is not None:
            spec.max = self.max
        if self.default is not None:
            self._set_default(spec)
        object.__setattr__(self, "spec", spec)

    def _set_default(self, spec: common_pb2.ParamSpec) -> None:
        try:
            value = from_python(self.type, self.default)
            checked = ParamsValidator([spec]).validate({self.name: value})[self.name]
        except TypeError as exc:
            raise TypeError(f"parameter {self.name!r}: default {self.default!r}: {exc}") from None
        except InvalidArgument as exc:
            raise ValueError(f"parameter {self.name!r}: default {self.default!r}: {exc.rule}") from None
        spec.default.CopyFrom(checked)
        # Keep the normalised object (e.g. "1h" -> timedelta) so ctx.params shows what handlers get.
        object.__setattr__(self, "default", to_python(self.type, checked))

    @classmethod
    def _make(
        cls, type_: common_pb2.ParamType, name: str, default: Any, required: builtins.bool | None, **kw: Any
    ) -> Param:
        return cls(
            name=name, type=type_, default=default, required=(default is None) if required is None else required, **kw
        )

    @classmethod
    def string(
        cls,
        name: str,
        default: str | None = None,
        *,
        required: builtins.bool | None = None,
        description: str = "",
        unit: str = "",
    ) -> Param:
        """A free-form string parameter."""
        return cls._make(T.PARAM_TYPE_STRING, name, default, required, description=description, unit=unit)

    @classmethod
    def enum(
        cls,
        name: str,
        allowed: list[str] | tuple[str, ...],
        default: str | None = None,
        *,
        required: builtins.bool | None = None,
        description: str = "",
        unit: str = "",
    ) -> Param:
        """A string out of `allowed`."""
        return cls._make(
            T.PARAM_TYPE_ENUM, name, default, required, allowed=tuple(allowed), description=description, unit=unit
        )

    @classmethod
    def bool(
        cls,
        name: str,
        default: builtins.bool | None = None,
        *,
        required: builtins.bool | None = None,
        description: str = "",
    ) -> Param:
        """A boolean; clients may send "true/false/1/0/yes/no"."""
        return cls._make(T.PARAM_TYPE_BOOL, name, default, required, description=description)

    @classmethod
    def int(
        cls,
        name: str,
        default: builtins.int | None = None,
        *,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
        required: builtins.bool | None = None,
        description: str = "",
        unit: str = "",
    ) -> Param:
        """A 64-bit integer with optional inclusive bounds."""
        return cls._make(
            T.PARAM_TYPE_INT,
            name,
            default,
            required,
            min=_bound(name, "min", min),
            max=_bound(name, "max", max),
            description=description,
            unit=unit,
        )

    @classmethod
    def float(
        cls,
        name: str,
        default: builtins.float | None = None,
        *,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
        required: builtins.bool | None = None,
        description: str = "",
        unit: str = "",
    ) -> Param:
        """A finite float with optional inclusive bounds."""
        return cls._make(
            T.PARAM_TYPE_FLOAT,
            name,
            default,
            required,
            min=_bound(name, "min", min),
            max=_bound(name, "max", max),
            description=description,
            unit=unit,
        )

    @classmethod
    def datetime(
        cls,
        name: str,
        default: _dt.datetime | str | None = None,
        *,
        required: builtins.bool | None = None,
        description: str = "",
    ) -> Param:
        """A point in time (ISO 8601 from clients; naive values are UTC)."""
        return cls._make(T.PARAM_TYPE_DATETIME, name, default, required, description=description)

    @classmethod
    def duration(
        cls,
        name: str,
        default: _dt.timedelta | builtins.float | str | None = None,
        *,
        min: _dt.timedelta | builtins.float | None = None,
        max: _dt.timedelta | builtins.float | None = None,
        required: builtins.bool | None = None,
        description: str = "",
    ) -> Param:
        """A duration ("90s", "1h30m", "PT1H" or seconds); bounds in seconds or timedeltas."""
        return cls._make(
            T.PARAM_TYPE_DURATION,
            name,
            default,
            required,
            min=_bound(name, "min", min),
            max=_bound(name, "max", max),
            description=description,
        )

    @classmethod
    def bytes(
        cls,
        name: str,
        default: builtins.bytes | None = None,
        *,
        required: builtins.bool | None = None,
        description: str = "",
    ) -> Param:
        """Raw bytes (a string from a client stands for its UTF-8 bytes)."""
        return cls._make(T.PARAM_TYPE_BYTES, name, default, required, description=description)
