"""The ``@workflow`` decorator: declares a workflow type and checks it at import time."""

from __future__ import annotations

import datetime as _dt
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf import duration_pb2

from workmesh.v1 import common_pb2
from workmesh.workers._constraints import compile_constraints
from workmesh.workers._params import Param
from workmesh.workers.params import ParamsValidator

F = TypeVar("F", bound=Callable[..., Any])

# Type names become Consul service names ("workmesh-wf-<type>") and health service names, so they
# must be DNS labels: lowercase letters, digits and inner hyphens, at most 63 characters.
_TYPE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ATTR = "__workmesh_workflow__"


@dataclass(frozen=True)
class WorkflowDefinition:
    """A declared workflow type, as attached to its handler by :func:`workflow`.

    Attributes:
        name: the type name (a DNS label).
        version: the type's version, e.g. ``"1.0.0"``.
        description: shown to users.
        params: the parameter declarations, in order.
        handler: the decorated function (``async def`` runs on the event loop, ``def`` in a thread).
        timeout: the default job timeout (``None``: none).
        max_attempts: attempts after worker loss or retryable errors.
        constraints: relations between parameters, e.g. ``("end > start",)``; they travel on
            the left parameter's ``ParamSpec.constraints``.
    """

    name: str
    version: str
    description: str
    params: tuple[Param, ...]
    handler: Callable[..., Any]
    timeout: _dt.timedelta | None = None
    max_attempts: int = 3
    constraints: tuple[str, ...] = ()
    is_async: bool = field(init=False)
    proto: common_pb2.WorkflowType = field(init=False, repr=False, compare=False)
    validator: ParamsValidator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        relations = compile_constraints(self.name, self.constraints, {p.name: p.type for p in self.params})
        proto = common_pb2.WorkflowType(
            name=self.name,
            version=self.version,
            description=self.description,
            params=[p.spec for p in self.params],
            max_attempts=self.max_attempts,
        )
        for spec in proto.params:  # copies: a Param may be shared by several types
            spec.constraints.extend(relations.get(spec.name, ()))
        if self.timeout is not None:
            proto.default_timeout.CopyFrom(
                duration_pb2.Duration(seconds=int(self.timeout.total_seconds()), nanos=self.timeout.microseconds * 1000)
            )
        object.__setattr__(self, "proto", proto)
        object.__setattr__(self, "validator", ParamsValidator(proto.params))
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.handler))

    def to_proto(self) -> common_pb2.WorkflowType:
        """A copy of the ``WorkflowType`` message that Describe returns."""
        copy = common_pb2.WorkflowType()
        copy.CopyFrom(self.proto)
        return copy


def definition_of(fn: Any) -> WorkflowDefinition | None:
    """The definition attached by :func:`workflow`, or ``None``."""
    definition = getattr(fn, _ATTR, None)
    return definition if isinstance(definition, WorkflowDefinition) else None


def _check_signature(name: str, fn: Callable[..., Any], params: Sequence[Param]) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"workflow {name!r}: cannot read the handler's signature: {exc}") from None
    args = list(sig.parameters.values())
    hint = "the handler must look like `async def handler(ctx, " + ", ".join(p.name for p in params) + ")`"
    if not args or args[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise TypeError(f"workflow {name!r}: the handler's first argument must be the Context (ctx); {hint}")
    rest = args[1:]
    takes_kwargs = any(a.kind is inspect.Parameter.VAR_KEYWORD for a in rest)
    by_name = {a.name: a for a in rest if a.kind is not inspect.Parameter.VAR_KEYWORD}
    declared = {p.name for p in params}
    for arg in by_name.values():
        if arg.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL):
            raise TypeError(f"workflow {name!r}: handler argument {arg.name!r} cannot be passed by keyword; {hint}")
        if arg.name not in declared:
            raise TypeError(
                f"workflow {name!r}: handler argument {arg.name!r} has no Param declaration; "
                f"add Param.<type>({arg.name!r}, ...) to params= or remove the argument"
            )
    if not takes_kwargs:
        missing = [p.name for p in params if p.name not in by_name]
        if missing:
            raise TypeError(f"workflow {name!r}: declared params {missing} are not handler arguments; {hint}")


def workflow(
    *,
    name: str,
    version: str = "0.1.0",
    description: str = "",
    params: Sequence[Param] = (),
    timeout: _dt.timedelta | float | None = None,
    max_attempts: int = 3,
    constraints: Sequence[str] = (),
) -> Callable[[F], F]:
    """Declare a function as the handler of a workflow type.

    The declaration is checked here, at import time: the type name, the parameter specs and
    that the handler's arguments are ``ctx`` followed by the declared parameters.

    Args:
        name: the type name: lowercase letters, digits and hyphens, at most 63 characters.
        version: the type's version.
        description: what the type computes.
        params: the parameter declarations (:class:`Param`).
        timeout: default job timeout (a timedelta or seconds); ``None`` for none.
        max_attempts: attempts after worker loss or a RetryableError (≥ 1).
        constraints: relations between two parameters, as ``"<param> <op> <param>"`` with op
            one of ``>``, ``>=``, ``<``, ``<=``, ``==`` (e.g. ``"end > start"``); checked here
            (both declared, comparable types) and for every job when both values are present.

    Returns:
        A decorator that attaches a frozen :class:`WorkflowDefinition` and returns the function.

    Raises:
        TypeError, ValueError: the declaration is invalid (the message says what to change).
    """
    if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
        raise ValueError(
            f"workflow name {name!r} must be 1-63 characters of lowercase letters, digits and "
            "'-', starting and ending with a letter or digit (it becomes the Consul service "
            "name workmesh-wf-<name>)"
        )
    if not isinstance(version, str) or not version or len(version) > 128:
        raise ValueError(f"workflow {name!r}: version must be a non-empty string of at most 128 characters")
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise ValueError(f"workflow {name!r}: max_attempts must be an int ≥ 1, got {max_attempts!r}")
    params = tuple(params)
    for p in params:
        if not isinstance(p, Param):
            raise TypeError(f"workflow {name!r}: params must be Param declarations (Param.int(...) etc.), got {p!r}")
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"workflow {name!r}: duplicate parameter names {duplicates}")
    if timeout is not None and not isinstance(timeout, _dt.timedelta):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"workflow {name!r}: timeout must be a timedelta or seconds")
        timeout = _dt.timedelta(seconds=timeout)
    if timeout is not None and timeout <= _dt.timedelta(0):
        raise ValueError(f"workflow {name!r}: timeout must be positive")
    if isinstance(constraints, str):
        constraints = (constraints,)
    constraints = tuple(constraints)
    compile_constraints(name, constraints, {p.name: p.type for p in params})  # fails at import, not at first job

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@workflow(name={name!r}) must decorate a function")
        if definition_of(fn) is not None:
            raise TypeError(f"workflow {name!r}: {fn.__name__} is already declared as a workflow")
        if inspect.isasyncgenfunction(fn):
            raise TypeError(f"workflow {name!r}: the handler must return a result, not be an async generator")
        _check_signature(name, fn, params)
        definition = WorkflowDefinition(
            name=name,
            version=version,
            description=description,
            params=params,
            handler=fn,
            timeout=timeout,
            max_attempts=max_attempts,
            constraints=constraints,
        )
        setattr(fn, _ATTR, definition)
        return fn

    return decorate


__all__ = ["WorkflowDefinition", "definition_of", "workflow"]
