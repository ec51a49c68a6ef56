"""The public names of workmesh.services.gateway.http are pinned: changing them is an API change."""

from workmesh.services.gateway import http


def test_exports():
    assert sorted(http.__all__) == ["CallError", "HttpConfig", "HttpServer", "create_app", "document", "parse_address"]
    for name in http.__all__:
        assert getattr(http, name) is not None


def test_config_from_env():
    assert http.HttpConfig.from_env({}).address == "127.0.0.1:8080"
    assert http.HttpConfig.from_env({"WORKMESH_HTTP_ADDR": "off"}).address is None
    assert http.HttpConfig.from_env({"WORKMESH_HTTP_ADDR": "0"}).address is None
    assert http.HttpConfig.from_env({"WORKMESH_HTTP_ADDR": "0.0.0.0:9000"}).address == "0.0.0.0:9000"
    assert http.HttpConfig.from_env({}).trace_url == ""
    jaeger = "http://jaeger:16686/trace/{trace_id}"
    assert http.HttpConfig.from_env({"WORKMESH_HTTP_TRACE_URL": jaeger}).trace_url == jaeger
    for bad in (
        {"WORKMESH_HTTP_ADDR": "nowhere"},
        {"WORKMESH_HTTP_MAX_BODY": "lots"},
        {"WORKMESH_HTTP_HEARTBEAT": "-1"},
        {"WORKMESH_HTTP_TRACE_URL": "http://jaeger:16686/trace/"},  # no {trace_id}
        {"WORKMESH_HTTP_TRACE_URL": "javascript:alert({trace_id})"},  # not http(s)
    ):
        try:
            http.HttpConfig.from_env(bad)
        except ValueError as exc:
            assert next(iter(bad)) in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
