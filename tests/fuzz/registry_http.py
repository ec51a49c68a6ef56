"""Random HTTP requests for the registry fuzz tests, and how to send them.

Requests are built to reach deep: besides raw garbage (any method, path, query, headers and
body), most are Consul-shaped — service and check registrations, TTL heartbeats, reads with
blocking parameters — with every field drawn from valid values, wrong types, extremes and
non-finite numbers. Service and check ids come from small pools, so the registry's state stays
bounded however long the fuzz runs, and every GRPC check target is on loopback (nothing here
resolves a name or leaves the machine).
"""

from __future__ import annotations

import http.client
import json
import string
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

SERVICE_IDS = [f"fz-{i}" for i in range(5)]
CHECK_IDS = [f"fzc-{i}" for i in range(3)] + [f"service:{sid}" for sid in SERVICE_IDS[:3]] + ["service:fz-0:1"]


@dataclass(frozen=True)
class Request:
    """One HTTP request as sent (the path includes the query string)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    query: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> str:
        return self.path + (("?" + urlencode(self.query)) if self.query else "")


def send(host: str, port: int, request: Request, timeout: float) -> tuple[int, bytes]:
    """Send `request` on a fresh connection; (status, body).

    Raises:
        TimeoutError: no answer within `timeout`.
        OSError: the connection failed (the registry is down).
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(request.method, request.target, body=request.body, headers=request.headers)
        reply = conn.getresponse()
        return reply.status, reply.read()
    except TimeoutError as exc:
        raise TimeoutError(f"no answer in {timeout}s") from exc
    finally:
        conn.close()


# -- values -----------------------------------------------------------------------------------------
short_text = st.text(max_size=12)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 10**400, 2**63, 2**63 - 1, 1e308, -0.0]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | short_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=8,
)
durations = st.one_of(
    numbers,  # a JSON number is nanoseconds
    st.sampled_from(
        [
            "1s",
            "1ns",
            "0",
            "0s",
            "-1s",
            "250ms",
            "1.5s",
            "1h",
            "1m30s",
            "",
            " ",
            "often",
            "9" * 400 + "h",
            "1e308s",
            "1e400h",
            ".5s",
            "1µs",
            "10us",
            "-0",
            "+1s",
            "1s1",
        ]
    ),
    short_text,
)
statuses = st.sampled_from(["passing", "warning", "critical", "", "PASSING", "maintenance"]) | json_values


@st.composite
def grpc_targets(draw, health_port: int) -> str:
    # Loopback only: live and dead ports, with and without a service, and malformed ones.
    return draw(
        st.sampled_from(
            [
                f"127.0.0.1:{health_port}/svc",
                f"127.0.0.1:{health_port}",
                f"127.0.0.1:{health_port}/",
                f"[::1]:{health_port}/svc",
                "127.0.0.1:1/x",
                "127.0.0.1",
                "127.0.0.1:99999/x",
                "127.0.0.1:0",
                "unix:/nonexistent/socket",
                "",
                "/svc",
                ":/",
            ]
        )
    )


def _recase(draw, key: str) -> str:
    # Consul decodes field names case-insensitively and in snake_case too.
    return draw(st.sampled_from([key, key.lower(), key.upper()]))


@st.composite
def _object(draw, fields: dict[str, st.SearchStrategy]) -> dict:
    chosen = draw(st.sets(st.sampled_from(sorted(fields)), max_size=len(fields)))
    obj = {_recase(draw, key): draw(fields[key]) for key in sorted(chosen)}
    if draw(st.integers(0, 9)) == 0:  # now and then a field nobody documents, or a wrong type
        obj[draw(short_text)] = draw(json_values)
    return obj


def check_bodies(health_port: int) -> st.SearchStrategy[dict]:
    return _object(
        {
            "GRPC": grpc_targets(health_port),
            "Interval": durations,
            "Timeout": durations,
            "TTL": durations,
            "DeregisterCriticalServiceAfter": durations,
            "Status": statuses,
            "CheckID": st.sampled_from(CHECK_IDS),
            "Name": short_text,
            "Notes": short_text | json_values,
            "GRPCUseTLS": json_values,
            "HTTP": st.just("http://127.0.0.1:1/"),
            "TCP": st.just("127.0.0.1:1"),
            "TLSSkipVerify": json_values,
            "SuccessBeforePassing": numbers,
            "ServiceID": st.sampled_from(SERVICE_IDS),
        }
    )


def service_bodies(health_port: int) -> st.SearchStrategy[dict]:
    checks = check_bodies(health_port)
    ports = st.integers(-1, 70_000) | numbers | short_text
    address = st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "", "host.invalid", "10.0.0.1"]) | short_text
    return _object(
        {
            "ID": st.sampled_from(SERVICE_IDS),
            "Name": st.sampled_from(SERVICE_IDS) | short_text,
            "Tags": st.lists(short_text, max_size=3) | json_values,
            "Address": address,
            "Port": ports,
            "Meta": st.dictionaries(short_text, short_text, max_size=4) | json_values,
            "TaggedAddresses": st.dictionaries(
                short_text, _object({"Address": address, "Port": ports}) | json_values, max_size=3
            )
            | json_values,
            "Weights": _object({"Passing": numbers, "Warning": numbers}) | json_values,
            "Check": checks | json_values,
            "Checks": st.lists(checks, max_size=3) | json_values,
            "EnableTagOverride": json_values,
            "Kind": st.sampled_from(["", "connect-proxy"]),
            "Connect": json_values,
        }
    ).map(lambda body: body if "id" in {k.lower() for k in body} else {**body, "Name": SERVICE_IDS[0]})


# Mostly-valid registrations reach what runs after validation: probes, TTL timers, the reaper.
valid_durations = st.integers(1, 10**11) | st.sampled_from(["1ns", "1ms", "100ms", "1s", "2s", "1m", "0.5s"])
meta_keys = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)


def valid_service_bodies(health_port: int) -> st.SearchStrategy[dict]:
    grpc = st.fixed_dictionaries(
        {"GRPC": grpc_targets(health_port), "Interval": valid_durations},
        optional={
            "Timeout": valid_durations,
            "Status": st.sampled_from(["passing", "critical"]),
            "DeregisterCriticalServiceAfter": valid_durations,
        },
    )
    ttl = st.fixed_dictionaries(
        {"TTL": valid_durations},
        optional={
            "Status": st.sampled_from(["passing", "warning"]),
            "DeregisterCriticalServiceAfter": valid_durations,
            "CheckID": st.sampled_from(CHECK_IDS),
        },
    )
    return st.fixed_dictionaries(
        {"ID": st.sampled_from(SERVICE_IDS), "Name": st.sampled_from(SERVICE_IDS)},
        optional={
            "Tags": st.lists(short_text, max_size=3),
            "Port": st.integers(0, 65535),
            "Address": st.sampled_from(["127.0.0.1", "::1", "", "localhost"]),
            "Meta": st.dictionaries(meta_keys, short_text, max_size=3),
            "TaggedAddresses": st.dictionaries(
                short_text,
                st.fixed_dictionaries({"Address": st.just("127.0.0.1"), "Port": st.integers(0, 65535)}),
                max_size=2,
            ),
            "Weights": st.fixed_dictionaries({"Passing": st.integers(1, 65535), "Warning": st.integers(0, 65535)}),
            "Check": grpc | ttl,
            "Checks": st.lists(grpc | ttl, max_size=3),
        },
    )


def _body(value: dict | list | object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


# -- queries, paths, headers ------------------------------------------------------------------------
short_waits = st.sampled_from(["0s", "1ms", "10ms", "100ms", "0", "forever", "-1s", "", "1"])
indexes = st.integers(-5, 2**70).map(str) | st.sampled_from(["abc", "", "1.5", "-0", "99999999999999999999"])
query_keys = st.sampled_from(
    [
        "dc",
        "tag",
        "passing",
        "note",
        "replace-existing-checks",
        "pretty",
        "stale",
        "consistent",
        "cached",
        "token",
        "peer",
        "filter",
        "near",
        "node-meta",
        "ns",
    ]
)


@st.composite
def queries(draw) -> tuple[tuple[str, str], ...]:
    pairs = [
        (draw(query_keys | short_text), draw(short_text | st.sampled_from(["dc1", "other", "1", "false"])))
        for _ in range(draw(st.integers(0, 3)))
    ]
    if draw(st.booleans()):  # a blocking query, always with a short wait so no example hangs
        pairs += [("index", draw(indexes)), ("wait", draw(short_waits))]
    return tuple(pairs)


READ_PATHS = [
    "/v1/catalog/services",
    "/v1/catalog/service/{s}",
    "/v1/health/service/{s}",
    "/v1/health/checks/{s}",
    "/v1/agent/services",
    "/v1/agent/checks",
    "/v1/agent/self",
    "/v1/status/leader",
    "/v1/status/peers",
]
segments = st.sampled_from(SERVICE_IDS + CHECK_IDS) | short_text.map(lambda s: quote(s, safe=""))
garbage_paths = st.one_of(
    st.sampled_from(
        [
            "/",
            "//v1//agent/services",
            "/v1/agent/check/pass/",
            "/v1/health/service/",
            "/v1/health/service/%ZZ",
            "/v1/agent/service/deregister/%2F%2E%2E",
            "/v1/../v1/agent/self",
            "/v1/kv/x",
            "/v1/agent/check/pass/%00",
            "/" + "a" * 9000,
            "/v1/agent/services/extra",
        ]
    ),
    st.lists(short_text.map(lambda s: quote(s, safe="")), max_size=5).map(lambda p: "/" + "/".join(p)),
)
header_names = st.sampled_from(
    [
        "X-Consul-Token",
        "Content-Type",
        "Accept",
        "X-Consul-Namespace",
        "Accept-Encoding",
        "Authorization",
        "Cache-Control",
        "X-Forwarded-For",
    ]
) | st.text(string.ascii_letters + "-", min_size=1, max_size=12)
headers = st.dictionaries(header_names, header_text, max_size=3)
raw_bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    json_values.map(_body),
    st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(1, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
)


def requests(health_port: int) -> st.SearchStrategy[Request]:
    """Every kind of request the fuzz sends."""
    services, checks = service_bodies(health_port), check_bodies(health_port)
    put = "PUT"
    valid = valid_service_bodies(health_port)
    return st.one_of(
        st.builds(lambda body: Request(put, "/v1/agent/service/register", {}, _body(body)), valid),
        st.builds(lambda body: Request(put, "/v1/agent/service/register", {}, _body(body)), valid),
        st.builds(
            lambda verb, cid: Request(put, f"/v1/agent/check/{verb}/{cid}"),
            st.sampled_from(["pass", "warn", "fail"]),
            st.sampled_from(CHECK_IDS),
        ),
        st.builds(
            lambda body, q, h: Request(put, "/v1/agent/service/register", h, _body(body), q),
            services,
            queries(),
            headers,
        ),
        st.builds(
            lambda body, cid, sid, name, h: Request(
                put, "/v1/agent/check/register", h, _body({**body, "CheckID": cid, "ServiceID": sid, "Name": name})
            ),
            checks,
            st.sampled_from(CHECK_IDS),
            st.sampled_from(SERVICE_IDS + [""]) | short_text,
            short_text,
            headers,
        ),
        st.builds(
            lambda verb, cid, q: Request(put, f"/v1/agent/check/{verb}/{cid}", {}, None, q),
            st.sampled_from(["pass", "warn", "fail"]),
            segments,
            queries(),
        ),
        st.builds(
            lambda cid, status, output: Request(
                put, f"/v1/agent/check/update/{cid}", {}, _body({"Status": status, "Output": output})
            ),
            segments,
            statuses,
            short_text | json_values,
        ),
        st.builds(
            lambda kind, sid: Request(put, f"/v1/agent/{kind}/deregister/{sid}"),
            st.sampled_from(["service", "check"]),
            segments,
        ),
        st.builds(
            lambda path, s, q, h: Request("GET", path.format(s=s), h, None, q),
            st.sampled_from(READ_PATHS),
            segments,
            queries(),
            headers,
        ),
        st.builds(
            Request,
            st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"])
            | st.text(string.ascii_uppercase, min_size=1, max_size=8),
            st.sampled_from(READ_PATHS).map(lambda p: p.format(s="fz-0")) | garbage_paths,
            headers,
            raw_bodies,
            queries(),
        ),
    )
