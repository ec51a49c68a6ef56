"""workmesh.workers.params: every validation rule, string parsing and conversions."""

from __future__ import annotations

import datetime as dt

import pytest

from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import common_pb2
from workmesh.workers import Param, from_python, to_python, validate_params
from workmesh.workers.params import ParamsValidator

PV = common_pb2.ParamValue
UTC = dt.UTC

SPECS = [
    p.spec
    for p in (
        Param.int("buildings", default=100, min=1, max=10000),
        Param.float("temperature", default=18.0, min=-50, max=50, unit="°C"),
        Param.enum("profile", ["residential", "office"], default="residential"),
        Param.bool("verbose", default=False),
        Param.string("label", required=True),
        Param.datetime("start", default="2026-01-01T00:00:00Z"),
        Param.duration("step", default="1h", min=1, max=86400),
        Param.bytes("blob", default=b""),
    )
]


def check(**values: PV) -> dict[str, object]:
    values.setdefault("label", PV(string_value="x"))
    typed = validate_params(SPECS, values)
    by_name = {s.name: s for s in SPECS}
    return {name: to_python(by_name[name], value) for name, value in typed.items()}


def rejects(field: str, fragment: str, **values: PV) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        check(**values)
    assert info.value.field == field
    assert fragment in info.value.rule, info.value.rule
    return info.value


def test_defaults_are_filled():
    out = check()
    assert out == {
        "buildings": 100,
        "temperature": 18.0,
        "profile": "residential",
        "verbose": False,
        "label": "x",
        "start": dt.datetime(2026, 1, 1, tzinfo=UTC),
        "step": dt.timedelta(hours=1),
        "blob": b"",
    }


def test_typed_values_pass():
    out = check(
        buildings=PV(int_value=7),
        temperature=PV(float_value=-3.5),
        verbose=PV(bool_value=True),
        profile=PV(string_value="office"),
        blob=PV(bytes_value=b"\x00\x01"),
    )
    assert (out["buildings"], out["temperature"], out["verbose"], out["profile"], out["blob"]) == (
        7,
        -3.5,
        True,
        "office",
        b"\x00\x01",
    )


def test_unknown_key_lists_known_names():
    err = rejects("params.colour", "unknown parameter; known: blob, buildings, label", colour=PV(string_value="red"))
    assert err.code.name == "INVALID_ARGUMENT"


def test_unknown_key_for_type_without_params():
    with pytest.raises(InvalidArgument, match="params.x: unknown parameter; known: none"):
        validate_params([], {"x": PV(int_value=1)})
    assert validate_params([], {}) == {}


def test_missing_required():
    with pytest.raises(InvalidArgument) as info:
        validate_params(SPECS, {})
    assert info.value.field == "params.label"
    assert info.value.rule == "required parameter is missing"


def test_optional_without_default_may_be_absent():
    specs = [Param.int("n", required=False).spec]
    assert validate_params(specs, {}) == {}


@pytest.mark.parametrize(
    "value, fragment",
    [
        (PV(float_value=3.0), "expected int, got float"),
        (PV(string_value="3.5"), "expected an int, got '3.5'"),
        (PV(string_value="many"), "expected an int, got 'many'"),
        (PV(bool_value=True), "expected int, got bool"),
        (PV(string_value=str(2**63)), "64-bit"),
    ],
)
def test_int_wrong_type(value, fragment):
    rejects("params.buildings", fragment, buildings=value)


@pytest.mark.parametrize("text, expected", [("42", 42), (" 7 ", 7), ("+5", 5), ("10_000", 10000)])
def test_int_from_string(text, expected):
    assert check(buildings=PV(string_value=text))["buildings"] == expected


def test_int_bounds():
    rejects("params.buildings", "must be ≤ 10000", buildings=PV(int_value=10001))
    rejects("params.buildings", "must be ≥ 1", buildings=PV(string_value="0"))
    assert check(buildings=PV(int_value=10000))["buildings"] == 10000


def test_float_rules():
    assert check(temperature=PV(int_value=20))["temperature"] == 20.0  # ints widen
    assert check(temperature=PV(string_value="1e1"))["temperature"] == 10.0
    rejects("params.temperature", "must be ≤ 50", temperature=PV(float_value=50.5))
    rejects("params.temperature", "must be ≥ -50", temperature=PV(string_value="-51"))
    rejects("params.temperature", "finite", temperature=PV(float_value=float("nan")))
    rejects("params.temperature", "finite", temperature=PV(string_value="inf"))
    rejects("params.temperature", "expected a float, got 'warm'", temperature=PV(string_value="warm"))
    rejects("params.temperature", "expected float, got bool", temperature=PV(bool_value=False))


def test_enum_not_allowed():
    rejects("params.profile", "must be one of residential, office", profile=PV(string_value="factory"))
    rejects("params.profile", "expected enum, got int", profile=PV(int_value=1))


@pytest.mark.parametrize(
    "text, expected", [("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("No", False)]
)
def test_bool_from_string(text, expected):
    assert check(verbose=PV(string_value=text))["verbose"] is expected


def test_bool_rejects_other_strings_and_ints():
    rejects("params.verbose", "expected a bool (true/false/1/0/yes/no)", verbose=PV(string_value="maybe"))
    rejects("params.verbose", "expected bool, got int", verbose=PV(int_value=1))


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("1h30m", 5400),
        ("PT1H30M", 5400),
        ("pt15m", 900),
        ("P1DT1S", 86401),
        ("3600", 3600),
        ("1.5", 1.5),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("2m30s", 150),
    ],
)
def test_duration_from_string(text, seconds):
    specs = [Param.duration("d", required=True).spec]
    value = validate_params(specs, {"d": PV(string_value=text)})["d"]
    assert to_python(specs[0], value).total_seconds() == pytest.approx(seconds)


def test_duration_rules():
    assert check(step=PV(int_value=60))["step"] == dt.timedelta(minutes=1)  # numbers are seconds
    rejects("params.step", "must be ≤ 86400s", step=PV(string_value="2d"))
    rejects("params.step", "must be ≥ 1s", step=PV(string_value="500ms"))
    rejects("params.step", 'expected a duration such as "90s"', step=PV(string_value="soon"))
    rejects("params.step", "expected a duration", step=PV(string_value="P1Y"))  # years have no fixed length
    rejects("params.step", "expected duration, got bool", step=PV(bool_value=True))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-01T12:30:00Z", dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30:00", dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),  # naive -> UTC
        ("2026-03-01T13:30:00+01:00", dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01", dt.datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_datetime_from_string(text, expected):
    assert check(start=PV(string_value=text))["start"] == expected


def test_datetime_rejects():
    rejects("params.start", "expected an ISO 8601 datetime", start=PV(string_value="yesterday"))
    rejects("params.start", "expected datetime, got int", start=PV(int_value=0))


def test_string_and_bytes():
    rejects("params.label", "expected string, got int", label=PV(int_value=3))
    assert check(blob=PV(string_value="hé"))["blob"] == "hé".encode()
    rejects("params.blob", "expected bytes, got bool", blob=PV(bool_value=True))


def test_empty_value_counts_as_absent():
    assert check(buildings=PV())["buildings"] == 100


def test_returned_values_are_typed():
    typed = validate_params(
        SPECS, {"label": PV(string_value="x"), "buildings": PV(string_value="5"), "step": PV(string_value="90s")}
    )
    assert typed["buildings"].WhichOneof("kind") == "int_value"
    assert typed["step"].duration_value.seconds == 90
    assert typed["profile"].string_value == "residential"


def test_validator_reuse_and_cache_follow_content():
    specs = [Param.int("n", default=1, max=5).spec]
    assert validate_params(specs, {"n": PV(int_value=5)})["n"].int_value == 5
    specs[0].max = 4  # the same list mutated: the cached validator must not be reused
    with pytest.raises(InvalidArgument, match="must be ≤ 4"):
        validate_params(specs, {"n": PV(int_value=5)})
    assert ParamsValidator(specs).validate({})["n"].int_value == 1


def test_from_python_and_back():
    cases = [
        (Param.int("a").spec, 3),
        (Param.float("b").spec, 2.5),
        (Param.bool("c").spec, True),
        (Param.string("d").spec, "x"),
        (Param.bytes("e").spec, b"\x01"),
        (Param.datetime("f").spec, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (Param.duration("g").spec, dt.timedelta(seconds=1.5)),
    ]
    for spec, obj in cases:
        assert to_python(spec, from_python(spec, obj)) == obj
    assert from_python(common_pb2.PARAM_TYPE_INT, "12").string_value == "12"  # strings are parsed later
    naive = from_python(common_pb2.PARAM_TYPE_DATETIME, dt.datetime(2026, 1, 1))
    assert to_python(common_pb2.PARAM_TYPE_DATETIME, naive) == dt.datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError, match="does not fit a int parameter"):
        from_python(common_pb2.PARAM_TYPE_INT, 1.5)
    assert to_python(common_pb2.PARAM_TYPE_INT, PV()) is None
