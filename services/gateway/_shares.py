"""The fair-share configuration file (``WORKMESH_SHARES_FILE``, TOML) and job priorities.

TOML because the standard library reads it (``tomllib``): no new dependency, and comments are
allowed. Example::

    half_life_seconds = 3600          # usage decay (default 1 h)

    [defaults.tenant]                 # limits of every tenant not listed (none unless set)
    max_running = 50
    [defaults.user]                   # limits of every user not listed
    max_queued = 1000

    [tenants.acme]
    weight = 2                        # twice the share of a weight-1 tenant
    max_running = 20
    [tenants.acme.users.alice]
    weight = 1                        # users of a tenant are equal unless weighted
    max_running = 4
    max_queued = 200

Every mistake is reported as :class:`SharesError` naming the key (``tenants.acme.weight: must
be a positive number, not -1``); the caller keeps the configuration it had.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from workmesh.services.gateway.dispatch._fairshare import DEFAULT_HALF_LIFE_S, Limits, Shares

__all__ = ["PRIORITIES", "SharesError", "load_shares", "parse_priority", "parse_shares"]

PRIORITIES = {"low": -10, "normal": 0, "high": 10}
PRIORITY_RANGE = (-1000, 1000)
_LIMIT_KEYS = ("max_running", "max_queued")


class SharesError(ValueError):
    """The shares file is unreadable or invalid; the message names the file and key."""


def parse_priority(value: str | int) -> int:
    """``low``/``normal``/``high`` or an integer in -1000..1000 ("" means normal).

    Raises:
        ValueError: anything else; the message lists what is accepted.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if text in ("", *PRIORITIES):
            return PRIORITIES.get(text, 0)
        try:
            number = int(text)
        except ValueError:
            raise ValueError(
                f"unknown priority {value!r}: use low, normal, high or an integer "
                f"from {PRIORITY_RANGE[0]} to {PRIORITY_RANGE[1]}"
            ) from None
    if not PRIORITY_RANGE[0] <= number <= PRIORITY_RANGE[1]:
        raise ValueError(f"priority {number} is out of range {PRIORITY_RANGE[0]}..{PRIORITY_RANGE[1]}")
    return number


def load_shares(path: str | Path) -> Shares:
    """Read and validate a shares file.

    Raises:
        SharesError: unreadable, not TOML, or invalid (naming the key and the rule).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SharesError(f"{path}: cannot read the shares file ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SharesError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_shares(data)
    except SharesError as exc:
        raise SharesError(f"{path}: {exc}") from None


def parse_shares(data: dict[str, Any]) -> Shares:
    """Validate the parsed contents of a shares file (see the module docstring)."""
    _only(data, "", ("half_life_seconds", "defaults", "tenants"))
    half_life = data.get("half_life_seconds", DEFAULT_HALF_LIFE_S)
    if not _number(half_life) or half_life <= 0:
        raise SharesError(f"half_life_seconds: must be a positive number of seconds, not {half_life!r}")
    defaults = _table(data.get("defaults", {}), "defaults")
    _only(defaults, "defaults.", ("tenant", "user"))
    default_tenant = _limits(_table(defaults.get("tenant", {}), "defaults.tenant"), "defaults.tenant", ())
    default_user = _limits(_table(defaults.get("user", {}), "defaults.user"), "defaults.user", ())
    tenants: dict[str, float] = {}
    users: dict[tuple[str, str], float] = {}
    tenant_limits: dict[str, Limits] = {}
    user_limits: dict[tuple[str, str], Limits] = {}
    for tenant, body in _table(data.get("tenants", {}), "tenants").items():
        where = f"tenants.{tenant}"
        body = _table(body, where)
        tenants[tenant] = _weight(body, where)
        if any(k in body for k in _LIMIT_KEYS):
            tenant_limits[tenant] = _limits(body, where, ("weight", "users"))
        else:
            _only(body, where + ".", ("weight", "users"))
        for user, ubody in _table(body.get("users", {}), where + ".users").items():
            uwhere = f"{where}.users.{user}"
            ubody = _table(ubody, uwhere)
            users[(tenant, user)] = _weight(ubody, uwhere)
            if any(k in ubody for k in _LIMIT_KEYS):
                user_limits[(tenant, user)] = _limits(ubody, uwhere, ("weight",))
            else:
                _only(ubody, uwhere + ".", ("weight",))
    return Shares(
        tenants=tenants,
        users=users,
        tenant_limits=tenant_limits,
        user_limits=user_limits,
        default_tenant_limits=default_tenant,
        default_user_limits=default_user,
        half_life_s=float(half_life),
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SharesError(f"{where}: must be a table, not {value!r}")
    return value


def _only(table: dict[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise SharesError(f"{prefix}{key}: unknown key; allowed here: {', '.join(allowed)}")


def _weight(table: dict[str, Any], where: str) -> float:
    weight = table.get("weight", 1.0)
    if not _number(weight) or weight <= 0:
        raise SharesError(f"{where}.weight: must be a positive number, not {weight!r}")
    return float(weight)


def _limits(table: dict[str, Any], where: str, others: tuple[str, ...]) -> Limits:
    _only(table, where + ".", (*others, *_LIMIT_KEYS))
    values: dict[str, int | None] = {}
    for key in _LIMIT_KEYS:
        value = table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            # A limit of 0 would block every job of the owner for good: leave the key out
            # for "no limit" instead.
            raise SharesError(
                f"{where}.{key}: must be a whole number of at least 1 (omit it for no limit), not {value!r}"
            )
        values[key] = value
    return Limits(**values)
