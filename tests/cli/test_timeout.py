"""``workmesh submit --timeout``: the one duration grammar, as a Duration on the request."""

from __future__ import annotations

import pytest

from workmesh.services.cli import main
from workmesh.services.cli._client import UsageError, submit_request


@pytest.mark.parametrize(
    ("text", "seconds", "nanos"),
    [
        ("1h30m", 5400, 0),
        ("90", 90, 0),
        ("1.5", 1, 500_000_000),
        ("15m", 900, 0),
        ("PT2H", 7200, 0),
        ("250ms", 0, 250_000_000),
    ],
)
def test_timeout_takes_every_duration_form(text, seconds, nanos):
    # Regression (issue 8): the CLI had its own parser, which rejected "1h30m".
    request = submit_request("echo", {}, timeout=text)
    assert (request.timeout.seconds, request.timeout.nanos) == (seconds, nanos)


def test_no_timeout_leaves_it_unset():
    assert not submit_request("echo", {}).HasField("timeout")


@pytest.mark.parametrize(
    ("text", "message"),
    [("soon", 'expected a duration such as "90s", "1h30m"'), ("0", "must be positive"), ("-5m", "must be positive")],
)
def test_a_bad_timeout_names_the_flag_and_the_rule(text, message):
    with pytest.raises(UsageError) as info:
        submit_request("echo", {}, timeout=text)
    assert str(info.value).startswith(f"--timeout {text!r}: ") and message in str(info.value)


def test_the_command_exits_2_on_a_bad_timeout_before_calling_anyone(capsys):
    # Port 1 on loopback: nothing listens, so only a usage error can give exit code 2 here.
    assert main(["submit", "echo", "--timeout", "1h30x", "--gateway", "127.0.0.1:1"]) == 2
    assert "--timeout '1h30x'" in capsys.readouterr().err
