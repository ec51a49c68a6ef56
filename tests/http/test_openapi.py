"""The OpenAPI document matches the routes, and schemathesis finds no 5xx and no schema break."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workmesh.registry import RegistryConfig
from workmesh.services.gateway.http import HttpConfig, create_app, document


def _canonical(path: str) -> str:
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def test_document_lists_exactly_the_routes_served():
    app = create_app(None, RegistryConfig(), HttpConfig(address="127.0.0.1:0"))
    served = {
        (route.method.lower(), _canonical(route.resource.canonical))
        for route in app.router.routes()
        if route.method not in ("HEAD", "*")
        and route.resource.canonical not in ("/",)
        and not route.resource.canonical.startswith("/static")
    }
    doc = document(max_body_bytes=1 << 20)
    documented = {(method, path) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    documented.add(("get", "/v1/openapi.json"))
    assert served == documented


@pytest.mark.e2e
def test_schemathesis_finds_no_server_error_and_no_schema_violation(http, tmp_path):
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    # types:watch never ends by design (it follows the registry); it is tested in test_api.py.
    result = subprocess.run(
        [
            str(exe if exe.exists() else "schemathesis"),
            "run",
            f"{http.base}/v1/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance,response_headers_conformance",
            "--exclude-path",
            "/v1/types:watch",
            "--max-examples",
            "10",
            "--request-timeout",
            "20",
            "--seed",
            "14",
            "--generation-database",
            "none",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )  # its caches go there too
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_document_carries_parameter_constraints():
    schemas = document(max_body_bytes=1 << 20)["components"]["schemas"]
    constraints = schemas["workmesh.v1.ParamSpec"]["properties"]["constraints"]
    assert constraints == {"type": "array", "items": {"$ref": "#/components/schemas/workmesh.v1.ParamConstraint"}}
    op = schemas["workmesh.v1.ParamConstraint"]["properties"]["op"]
    assert "CONSTRAINT_OP_GREATER" in op["enum"]
