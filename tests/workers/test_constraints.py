"""Parameter constraints (issue 13 point 5): declared in @workflow, checked at import and per job."""

from __future__ import annotations

import datetime as dt

import pytest

from workmesh.services.core.errors import InvalidArgument
from workmesh.v1 import common_pb2 as c
from workmesh.workers import Context, Param, definition_of, validate_params, workflow

DT = c.ParamValue


def _period(*constraints: str):
    @workflow(
        name="period",
        params=[
            Param.datetime("start", required=True),
            Param.datetime("end", required=True),
            Param.float("min_temperature", default=10.0),
            Param.float("max_temperature", default=80.0),
            Param.int("steps", default=None, required=False),
            Param.int("limit", default=100),
        ],
        constraints=constraints,
    )
    async def period(ctx: Context, start, end, min_temperature, max_temperature, steps, limit) -> dict:
        return {}

    definition = definition_of(period)
    assert definition is not None
    return definition


def test_constraints_travel_on_the_left_parameters_spec():
    proto = _period("end > start", "min_temperature <= max_temperature", "steps<=limit").to_proto()
    specs = {p.name: p for p in proto.params}
    assert [(k.op, k.other) for k in specs["end"].constraints] == [(c.CONSTRAINT_OP_GREATER, "start")]
    assert [(k.op, k.other) for k in specs["min_temperature"].constraints] == [
        (c.CONSTRAINT_OP_LESS_EQUAL, "max_temperature")
    ]
    assert [(k.op, k.other) for k in specs["steps"].constraints] == [(c.CONSTRAINT_OP_LESS_EQUAL, "limit")]
    assert not specs["start"].constraints
    # Round trip through the wire, as the gateway gets it from Describe.
    again = c.WorkflowType.FromString(proto.SerializeToString())
    assert again == proto


@pytest.mark.parametrize(
    ("constraint", "error", "words"),
    [
        ("end > begin", ValueError, "'begin', which is not declared"),
        ("stop > start", ValueError, "'stop', which is not declared"),
        ("end > min_temperature", TypeError, "compares a datetime parameter ('end') with a number one"),
        ("end >> start", ValueError, "must read '<param> <op> <param>'"),
        ("end > end", ValueError, "with itself"),
    ],
)
def test_bad_constraints_fail_at_import(constraint, error, words):
    with pytest.raises(error, match="constraint") as exc:
        _period(constraint)
    assert words in str(exc.value)


def test_ordering_needs_ordered_types_and_duplicates_are_refused():
    with pytest.raises(TypeError, match="only support '=='"):

        @workflow(name="t", params=[Param.string("a", "x"), Param.enum("b", ["x", "y"], "x")], constraints=["a < b"])
        async def t(ctx, a, b):
            return {}

    @workflow(name="t2", params=[Param.string("a", "x"), Param.enum("b", ["x", "y"], "x")], constraints=["a == b"])
    async def t2(ctx, a, b):
        return {}

    with pytest.raises(ValueError, match="declared twice"):
        _period("end > start", "end>start")


def _values(**kw) -> dict[str, c.ParamValue]:
    out = {}
    for key, v in kw.items():
        out[key] = (
            DT(float_value=v) if isinstance(v, float) else DT(int_value=v) if isinstance(v, int) else DT(string_value=v)
        )
    return out


@pytest.mark.parametrize(
    ("constraint", "values", "field", "rule"),
    [
        (
            "end > start",
            {"start": "2024-01-02", "end": "2024-01-01"},
            "params.end",
            "must be greater than params.start (constraint end > start)",
        ),
        (
            "end > start",
            {"start": "2024-01-01", "end": "2024-01-01"},
            "params.end",
            "must be greater than params.start",
        ),
        (
            "end >= start",
            {"start": "2024-01-02", "end": "2024-01-01"},
            "params.end",
            "greater than or equal to params.start",
        ),
        (
            "min_temperature <= max_temperature",
            {"min_temperature": 90.0},
            "params.min_temperature",
            "less than or equal to params.max_temperature",
        ),
        (
            "min_temperature < max_temperature",
            {"min_temperature": 80.0},
            "params.min_temperature",
            "must be less than params.max_temperature",
        ),
        (
            "limit == steps",
            {"steps": 5},
            "params.limit",
            "must be equal to params.steps (constraint limit == steps); got limit=100, steps=5",
        ),
    ],
)
def test_broken_constraint_names_both_parameters_and_the_rule(constraint, values, field, rule):
    proto = _period(constraint).to_proto()
    base = {"start": "2024-01-01", "end": "2024-02-01"}
    with pytest.raises(InvalidArgument) as exc:
        validate_params(proto.params, _values(**{**base, **values}))
    assert exc.value.field == field
    assert rule in exc.value.rule


def test_kept_constraints_pass_and_absent_optional_values_are_not_compared():
    proto = _period("end > start", "min_temperature <= max_temperature", "steps <= limit").to_proto()
    out = validate_params(proto.params, _values(start="2024-01-01", end="2024-01-01T00:00:01", min_temperature=80.0))
    assert "steps" not in out  # optional, no default: the constraint on it does not apply
    assert out["end"].datetime_value.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    validate_params(proto.params, _values(start="2024-01-01", end="2024-02-01", steps=100))
    with pytest.raises(InvalidArgument, match="params.limit"):
        validate_params(proto.params, _values(start="2024-01-01", end="2024-02-01", steps=101))


def test_durations_and_mixed_numbers_compare():
    @workflow(
        name="windows",
        params=[
            Param.duration("step", "15m"),
            Param.duration("horizon", "1h"),
            Param.int("n", 1),
            Param.float("x", 1.5),
        ],
        constraints=["step < horizon", "n <= x"],
    )
    async def windows(ctx, step, horizon, n, x):
        return {}

    proto = definition_of(windows).to_proto()
    validate_params(proto.params, {})
    with pytest.raises(InvalidArgument) as exc:
        validate_params(proto.params, {"step": DT(string_value="2h")})
    assert exc.value.field == "params.step" and "params.horizon" in exc.value.rule
    with pytest.raises(InvalidArgument) as exc:
        validate_params(proto.params, {"n": DT(int_value=2)})
    assert exc.value.field == "params.n" and "params.x" in exc.value.rule


def test_a_constraint_naming_an_unknown_parameter_on_the_wire_is_ignored():
    # A worker built without these import-time checks: its mistake must not fail clients' jobs.
    spec = c.ParamSpec(
        name="a", type=c.PARAM_TYPE_INT, constraints=[c.ParamConstraint(op=c.CONSTRAINT_OP_GREATER, other="zz")]
    )
    assert validate_params([spec], {"a": DT(int_value=1)})["a"].int_value == 1
