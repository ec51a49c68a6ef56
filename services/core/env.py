"""The one reader of settings from the environment: every error names the variable and the rule.

Each service's configuration (a frozen dataclass with a ``from_env``) reads its variables through
these functions, once at process start. An unset or blank variable gives the default; anything
else must parse, or :class:`EnvError` (a ``ValueError``) says ``NAME='value': must be ...``.
Durations are read with :func:`workmesh.services.core.durations.parse_duration`: ``90`` or
``1.5`` (seconds), ``500ms``, ``90s``, ``1h30m``, ``7d``, ``PT1H30M``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal, overload

from workmesh.services.core.durations import parse_duration

__all__ = ["EnvError", "choice", "flag", "host_port", "integer", "number", "seconds", "text"]

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
_OFF = frozenset({"0", "off", "none"})


class EnvError(ValueError):
    """A malformed environment variable; the message is ``NAME='value': the rule``."""

    def __init__(self, name: str, raw: str, rule: str) -> None:
        super().__init__(f"{name}={raw!r}: {rule}")
        self.name, self.raw, self.rule = name, raw, rule


def text(env: Mapping[str, str], name: str, default: str = "") -> str:
    """The variable without surrounding blanks, or `default` when unset or blank."""
    return env.get(name, "").strip() or default


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    raw = text(env, name)
    if not raw:
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise EnvError(name, raw, "must be 1/true/yes/on or 0/false/no/off")


def choice(env: Mapping[str, str], name: str, default: str, choices: Iterable[str]) -> str:
    """One of `choices`, matched without regard to case; returned as spelled in `choices`."""
    options = tuple(choices)
    raw = text(env, name)
    if not raw:
        return default
    for option in options:
        if raw.lower() == option.lower():
            return option
    raise EnvError(name, raw, f"must be one of {', '.join(options)}")


def _range_rule(what: str, minimum: float | None, maximum: float | None, above: float | None, unit: str) -> str:
    if above is None and minimum is not None and maximum is not None:
        return f"must be {what} between {minimum:g}{unit} and {maximum:g}{unit}"
    bounds = []
    if above is not None:
        bounds.append(f"above {above:g}{unit}")
    elif minimum is not None:
        bounds.append(f"at least {minimum:g}{unit}")
    if maximum is not None:
        bounds.append(f"at most {maximum:g}{unit}")
    return f"must be {what}" + (", " + " and ".join(bounds) if bounds else "")


def _check(
    name: str,
    raw: str,
    value: float,
    what: str,
    minimum: float | None,
    maximum: float | None,
    above: float | None,
    unit: str = "",
) -> None:
    if (
        (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (above is not None and value <= above)
    ):
        raise EnvError(name, raw, _range_rule(what, minimum, maximum, above, unit))


@overload
def integer(
    env: Mapping[str, str], name: str, default: int, *, minimum: int | None = ..., maximum: int | None = ...
) -> int: ...
@overload
def integer(
    env: Mapping[str, str], name: str, default: None, *, minimum: int | None = ..., maximum: int | None = ...
) -> int | None: ...
def integer(
    env: Mapping[str, str],
    name: str,
    default: int | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """A decimal integer (``_`` separators allowed) within ``[minimum, maximum]``."""
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise EnvError(name, raw, _range_rule("an integer", minimum, maximum, None, "")) from None
    _check(name, raw, value, "an integer", minimum, maximum, None)
    return value


@overload
def number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float | None = ...,
    maximum: float | None = ...,
    above: float | None = ...,
) -> float: ...
@overload
def number(
    env: Mapping[str, str],
    name: str,
    default: None,
    *,
    minimum: float | None = ...,
    maximum: float | None = ...,
    above: float | None = ...,
) -> float | None: ...
def number(
    env: Mapping[str, str],
    name: str,
    default: float | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
) -> float | None:
    """A finite decimal number within ``[minimum, maximum]`` (and ``> above`` when given)."""
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise EnvError(name, raw, _range_rule("a number", minimum, maximum, above, ""))
    _check(name, raw, value, "a number", minimum, maximum, above)
    return value


@overload
def seconds(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float | None = ...,
    maximum: float | None = ...,
    above: float | None = ...,
    off: Literal[False] = ...,
) -> float: ...
@overload
def seconds(
    env: Mapping[str, str],
    name: str,
    default: float | None,
    *,
    minimum: float | None = ...,
    maximum: float | None = ...,
    above: float | None = ...,
    off: bool = ...,
) -> float | None: ...
def seconds(
    env: Mapping[str, str],
    name: str,
    default: float | None,
    *,
    minimum: float | None = 0.0,
    maximum: float | None = None,
    above: float | None = None,
    off: bool = False,
) -> float | None:
    """A duration in seconds: plain seconds (``90``, ``1.5``), ``500ms``, ``1h30m``, ``7d`` or
    ISO 8601 (``PT1H30M``), within ``[minimum, maximum]`` (and ``> above`` when given).

    Args:
        off: ``0``, ``off`` and ``none`` mean "no duration" and give None.
    """
    raw = text(env, name)
    if not raw:
        return default
    if off and raw.lower() in _OFF:
        return None
    what = 'a duration such as "90s", "1h30m", "PT1H" or seconds' + (', or "off"' if off else "")
    try:
        value = parse_duration(raw)
    except ValueError:
        raise EnvError(name, raw, _range_rule(what, minimum, maximum, above, "s")) from None
    _check(name, raw, value, what, minimum, maximum, above, "s")
    return value


def host_port(env: Mapping[str, str], name: str, default: str) -> str:
    """A ``host:port`` address (``[v6]:port`` for IPv6; port 0-65535, 0 picks a free one)."""
    raw = text(env, name)
    if not raw:
        return default
    host, _, port = raw.rpartition(":")
    if not host.strip("[]") or not port.isdigit() or int(port) > 65535:
        raise EnvError(name, raw, "must be host:port")
    return raw
