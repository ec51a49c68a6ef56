"""@workflow and Param: declarations are checked at import time and convert to WorkflowType."""

from __future__ import annotations

import datetime as dt

import pytest

from workmesh.v1 import common_pb2
from workmesh.workers import Context, Param, Worker, definition_of, workflow


def test_definition_attached_and_frozen():
    @workflow(
        name="heat-demand",
        version="1.2.0",
        description="demo",
        timeout=90,
        max_attempts=5,
        params=[
            Param.int("buildings", default=100, min=1, max=100000, description="how many"),
            Param.enum("profile", ["residential", "office"], default="office"),
        ],
    )
    async def handler(ctx: Context, buildings: int, profile: str) -> dict:
        return {}

    definition = definition_of(handler)
    assert definition is not None and definition.handler is handler and definition.is_async
    with pytest.raises(AttributeError):
        definition.name = "other"  # frozen
    proto = definition.to_proto()
    assert isinstance(proto, common_pb2.WorkflowType)
    assert (proto.name, proto.version, proto.description, proto.max_attempts) == ("heat-demand", "1.2.0", "demo", 5)
    assert proto.default_timeout.seconds == 90
    buildings, profile = proto.params
    assert buildings.type == common_pb2.PARAM_TYPE_INT and buildings.default.int_value == 100
    assert (buildings.min, buildings.max, buildings.description) == (1, 100000, "how many")
    assert not buildings.required
    assert profile.type == common_pb2.PARAM_TYPE_ENUM and list(profile.allowed) == ["residential", "office"]
    assert profile.default.string_value == "office"


def test_sync_handler_and_kwargs_handler_are_accepted():
    @workflow(name="sync-one", params=[Param.float("x", default=1.0)])
    def sync_handler(ctx, x):
        return {}

    @workflow(name="kw", params=[Param.int("a", default=1), Param.int("b", default=2)])
    async def kw_handler(ctx, **params):
        return params

    assert not definition_of(sync_handler).is_async
    assert [p.name for p in definition_of(kw_handler).params] == ["a", "b"]


def test_param_without_default_is_required():
    spec = Param.string("label").spec
    assert spec.required and not spec.HasField("default")
    assert not Param.string("label", required=False).spec.required


def test_duration_and_datetime_defaults_are_normalised():
    d = Param.duration("step", default="1h30m", min=dt.timedelta(minutes=1))
    assert d.default == dt.timedelta(hours=1, minutes=30) and d.spec.default.duration_value.seconds == 5400
    assert d.spec.min == 60
    t = Param.datetime("start", default="2026-01-01T00:00:00")
    assert t.default == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("name", ["Heat", "heat_demand", "-heat", "heat-", "", "a" * 64, "héat", "a b"])
def test_bad_type_names(name):
    with pytest.raises(ValueError, match="workflow name"):
        workflow(name=name)


def test_type_name_limits_accepted():
    workflow(name="a" * 63)
    workflow(name="x")
    workflow(name="heat-demand-2")


@pytest.mark.parametrize(
    "make, error, fragment",
    [
        (lambda: Param.int("n", default=0, min=1), ValueError, "default 0: must be ≥ 1"),
        (lambda: Param.float("x", default=11.0, max=10), ValueError, "default 11.0: must be ≤ 10"),
        (lambda: Param.enum("p", ["a", "b"], default="c"), ValueError, "must be one of a, b"),
        (lambda: Param.enum("p", []), ValueError, "non-empty list"),
        (lambda: Param.enum("p", ["a", "a"]), ValueError, "repeat"),
        (lambda: Param.int("n", min=5, max=1), ValueError, "min (5) is greater than max (1)"),
        (lambda: Param.int("n", default="many"), ValueError, "expected an int"),
        (lambda: Param.int("n", default=1.5), TypeError, "does not fit a int parameter"),
        (lambda: Param.bool("b", default="perhaps"), ValueError, "expected a bool"),
        (lambda: Param.duration("d", default="soon"), ValueError, "expected a duration"),
        (lambda: Param.int("n", default=1, required=True), ValueError, "cannot have a default"),
        (lambda: Param.int("class"), ValueError, "Python identifier"),
        (lambda: Param.int("my-param"), ValueError, "Python identifier"),
        (lambda: Param.int("n", min="1"), TypeError, "min must be a number"),
        (lambda: Param.float("x", max=float("inf")), ValueError, "max must be finite"),
        (lambda: Param(name="s", type=common_pb2.PARAM_TYPE_STRING, min=1), TypeError, "min/max only apply"),
        (lambda: Param(name="s", type=common_pb2.PARAM_TYPE_STRING, allowed=("a",)), TypeError, "only apply to enum"),
        (lambda: Param(name="s", type=99), ValueError, "unknown type"),
    ],
)
def test_bad_params(make, error, fragment):
    with pytest.raises(error) as info:
        make()
    assert fragment in str(info.value)


def test_signature_must_match_params():
    with pytest.raises(TypeError, match="has no Param declaration"):

        @workflow(name="a", params=[Param.int("n", default=1)])
        async def extra(ctx, n, m): ...

    with pytest.raises(TypeError, match=r"declared params \['m'\] are not handler arguments"):

        @workflow(name="b", params=[Param.int("n", default=1), Param.int("m", default=1)])
        async def missing(ctx, n): ...

    with pytest.raises(TypeError, match="first argument must be the Context"):

        @workflow(name="c")
        async def no_ctx(): ...

    with pytest.raises(TypeError, match="cannot be passed by keyword"):

        @workflow(name="d", params=[Param.int("n", default=1)])
        async def positional(ctx, n, /): ...


def test_other_declaration_errors():
    with pytest.raises(ValueError, match=r"duplicate parameter names \['n'\]"):
        workflow(name="dup", params=[Param.int("n", default=1), Param.float("n", default=1.0)])
    with pytest.raises(TypeError, match="must be Param declarations"):
        workflow(name="raw", params=[{"name": "n"}])
    with pytest.raises(ValueError, match="max_attempts"):
        workflow(name="att", max_attempts=0)
    with pytest.raises(ValueError, match="timeout must be positive"):
        workflow(name="tmo", timeout=0)
    with pytest.raises(ValueError, match="version"):
        workflow(name="ver", version="")


def test_worker_needs_declared_functions():
    async def plain(ctx): ...

    with pytest.raises(TypeError, match=r"plain is not a workflow: decorate it with @workflow"):
        Worker([plain])

    @workflow(name="same")
    async def one(ctx): ...

    @workflow(name="same")
    async def two(ctx): ...

    with pytest.raises(ValueError, match=r"declared twice.*\['same'\]"):
        Worker([one, two])
    with pytest.raises(ValueError, match="at least one"):
        Worker([])
    with pytest.raises(ValueError, match="capacity"):
        Worker([one], capacity=0)
