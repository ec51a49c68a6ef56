"""The one environment reader: values, defaults, and errors that name the variable and the rule."""

from __future__ import annotations

import pytest

from workmesh.services.core import env


def test_unset_and_blank_give_the_default():
    for raw in ({}, {"X": ""}, {"X": "  "}):
        assert env.text(raw, "X", "d") == "d"
        assert env.integer(raw, "X", 7) == 7
        assert env.number(raw, "X", None) is None
        assert env.seconds(raw, "X", 1.5) == 1.5
        assert env.flag(raw, "X", True) is True
        assert env.choice(raw, "X", "fair", ("fair", "fifo")) == "fair"
        assert env.host_port(raw, "X", "127.0.0.1:1") == "127.0.0.1:1"


def test_values_are_parsed():
    assert env.text({"X": " a b "}, "X") == "a b"
    assert env.integer({"X": "1_000"}, "X", 0) == 1000
    assert env.number({"X": "2.5"}, "X", 0.0) == 2.5
    assert [env.seconds({"X": v}, "X", 0.0) for v in ("90", "1.5", "500ms", "1h30m", "2d", "PT1M")] == [
        90.0,
        1.5,
        0.5,
        5400.0,
        172800.0,
        60.0,
    ]
    assert [env.seconds({"X": v}, "X", 5.0, off=True) for v in ("off", "0", "None", "12h")] == [
        None,
        None,
        None,
        43200.0,
    ]
    assert [env.flag({"X": v}, "X", False) for v in ("1", "TRUE", "yes", "on")] == [True] * 4
    assert [env.flag({"X": v}, "X", True) for v in ("0", "False", "no", "OFF")] == [False] * 4
    assert env.choice({"X": "FULL"}, "X", "NORMAL", ("NORMAL", "FULL")) == "FULL"
    assert env.choice({"X": "full"}, "X", "NORMAL", ("NORMAL", "FULL")) == "FULL"  # spelled as the choice
    assert env.host_port({"X": "[::1]:0"}, "X", "") == "[::1]:0"


@pytest.mark.parametrize(
    ("read", "raw", "message"),
    [
        (lambda e: env.integer(e, "N", 1), "x", "N='x': must be an integer"),
        (lambda e: env.integer(e, "N", 1, minimum=1), "0", "N='0': must be an integer, at least 1"),
        (lambda e: env.integer(e, "N", 1, minimum=1, maximum=9), "10", "N='10': must be an integer between 1 and 9"),
        (lambda e: env.integer(e, "N", 1, maximum=9), "1.5", "N='1.5': must be an integer, at most 9"),
        (lambda e: env.number(e, "N", 1.0, above=0), "0", "N='0': must be a number, above 0"),
        (lambda e: env.number(e, "N", 1.0), "nan", "N='nan': must be a number"),
        (lambda e: env.seconds(e, "D", 1.0), "soon", "D='soon': must be a duration such as \"90s\""),
        (lambda e: env.seconds(e, "D", 1.0), "-1s", "D='-1s': must be a duration"),
        (lambda e: env.seconds(e, "D", 1.0, maximum=600), "1h", "between 0s and 600s"),
        (lambda e: env.seconds(e, "D", 1.0, above=0), "0", "D='0': must be a duration"),
        (lambda e: env.seconds(e, "D", None, off=True), "never", 'or seconds, or "off"'),
        (lambda e: env.flag(e, "F", False), "maybe", "F='maybe': must be 1/true/yes/on or 0/false/no/off"),
        (lambda e: env.choice(e, "C", "a", ("a", "b")), "c", "C='c': must be one of a, b"),
        (lambda e: env.host_port(e, "A", ""), "nowhere", "A='nowhere': must be host:port"),
        (lambda e: env.host_port(e, "A", ""), "h:70000", "A='h:70000': must be host:port"),
    ],
)
def test_errors_name_the_variable_and_the_rule(read, raw, message):
    with pytest.raises(env.EnvError) as info:
        read({"N": raw, "D": raw, "F": raw, "C": raw, "A": raw})
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # what configuration readers have always raised
    assert str(info.value).startswith(f"{info.value.name}={raw!r}: must be ")
