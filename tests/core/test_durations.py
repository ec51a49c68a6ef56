"""The one duration grammar (people's text) and its strict Go subset (Consul's API)."""

from __future__ import annotations

import pytest

from workmesh.services.core.durations import format_duration, parse_duration, parse_go_duration, to_proto


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1.5", 1.5),
        (" 90s ", 90.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("10us", 1e-5),
        ("7d", 7 * 86400.0),
        ("2w", 14 * 86400.0),
        ("-5m", -300.0),
        ("PT1H30M", 5400.0),
        ("pt15m", 900.0),
        ("P1DT2H", 93600.0),
        ("P1W", 604800.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "1h30", "P", "PT", "P1DT", "P1Y", "P1M", "inf", "nan", "1 s"])
def test_parse_duration_rejects_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match='duration such as "90s", "1h30m", "PT1H30M" or seconds|finite'):
        parse_duration(text)


def test_go_subset_is_what_consul_accepts():
    assert parse_go_duration("1m30s") == 90.0 and parse_go_duration("0") == 0.0
    assert parse_go_duration(2_000_000_000) == 2.0  # JSON numbers are nanoseconds
    for text in ("90", "1d", "PT1S", "", True):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_go_duration(text)


def test_format_and_proto():
    assert (format_duration(1.5), format_duration(0.25)) == ("1.5s", "250ms")
    assert parse_go_duration(format_duration(0.25)) == 0.25
    duration = to_proto(parse_duration("1h30m"))
    assert (duration.seconds, duration.nanos) == (5400, 0)
    assert to_proto(0.5).nanos == 500_000_000
