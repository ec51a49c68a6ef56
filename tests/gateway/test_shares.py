"""The fair-share configuration file and job priorities: what is accepted, what is refused."""

from __future__ import annotations

import re

import pytest

from workmesh.services.gateway._shares import SharesError, load_shares, parse_priority
from workmesh.services.gateway.dispatch._fairshare import Limits, Owner

GOOD = """
half_life_seconds = 600
[defaults.user]
max_queued = 100
[tenants.acme]
weight = 2
max_running = 20
[tenants.acme.users.alice]
max_running = 4
[tenants.other]
"""


def test_shares_file_gives_weights_and_limits(tmp_path):
    path = tmp_path / "shares.toml"
    path.write_text(GOOD)
    shares = load_shares(path)
    assert shares.half_life_s == 600
    assert shares.tenant_weight("acme") == 2 and shares.tenant_weight("other") == 1
    assert shares.tenant_weight("unlisted") == 1
    assert shares.tenant_limit("acme") == Limits(max_running=20)
    assert shares.user_limit(Owner("acme", "alice")) == Limits(max_running=4)
    assert shares.user_limit(Owner("acme", "bob")) == Limits(max_queued=100)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[tenants.acme]\nweight = -1", "tenants.acme.weight: must be a positive number"),
        ("[tenants.acme]\nweight = 0", "tenants.acme.weight: must be a positive number"),
        ("[tenants.acme.users.al]\nweight = 'x'", "tenants.acme.users.al.weight"),
        ("[tenants.acme]\nmax_running = 0", "tenants.acme.max_running: must be a whole number of at least 1"),
        ("[defaults.user]\nmax_queued = 0", "defaults.user.max_queued"),
        ("[tenants.acme]\nmax_runing = 3", "tenants.acme.max_runing: unknown key"),
        ("half_life_seconds = -5", "half_life_seconds: must be a positive number"),
        ("[tenants.acme\nweight = 1", "not valid TOML"),
        ("tenants = 3", "tenants: must be a table"),
    ],
)
def test_bad_shares_file_names_the_key(tmp_path, text, key):
    path = tmp_path / "shares.toml"
    path.write_text(text)
    with pytest.raises(SharesError, match=re.escape(key)) as info:
        load_shares(path)
    assert str(path) in str(info.value)


def test_missing_shares_file_is_an_error(tmp_path):
    with pytest.raises(SharesError, match="cannot read"):
        load_shares(tmp_path / "nope.toml")


@pytest.mark.parametrize(("value", "expected"), [("low", -10), ("", 0), ("HIGH", 10), ("7", 7), (-3, -3)])
def test_priorities(value, expected):
    assert parse_priority(value) == expected


@pytest.mark.parametrize("value", ["urgent", "1.5", "5000"])
def test_unknown_priority_is_rejected(value):
    with pytest.raises(ValueError, match="priority"):
        parse_priority(value)
