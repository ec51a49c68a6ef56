"""Client-side auth errors: gRPC UNAUTHENTICATED / PERMISSION_DENIED become their own workmesh
exceptions (exported from the clients package), and the CLI prints them with a hint.

The real-process path (a gateway with authentication on refusing the CLI) is in
tests/auth/test_token_cli.py; these are the unit checks of the mapping and the printing."""

from __future__ import annotations

import grpc
import pytest

from workmesh.services import clients
from workmesh.services.cli import _client
from workmesh.services.core import errors


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def test_the_clients_package_exports_the_auth_errors():
    assert clients.Unauthenticated is errors.Unauthenticated
    assert clients.PermissionDenied is errors.PermissionDenied
    assert issubclass(clients.Unauthenticated, clients.WorkmeshError)
    assert issubclass(clients.PermissionDenied, clients.WorkmeshError)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
    ],
)
def test_a_status_maps_to_its_exception_with_the_details(code, cls):
    error = clients.from_rpc_error(rpc_error(code, "token expired"))
    assert type(error) is cls and error.code == code and error.message == "token expired"


def test_an_unmapped_status_keeps_its_code():
    error = clients.from_rpc_error(rpc_error(grpc.StatusCode.ABORTED, "x"))
    assert type(error) is errors.WorkmeshError and error.code == grpc.StatusCode.ABORTED


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, "WORKMESH_TOKEN"),
        (grpc.StatusCode.PERMISSION_DENIED, "lacks the scope or grant"),
    ],
)
def test_the_cli_prints_an_auth_error_with_a_hint(capsys, code, hint):
    assert _client.report_rpc_error(rpc_error(code, "missing scope jobs:submit")) == 1
    printed = capsys.readouterr().err
    assert f"{code.name}: missing scope jobs:submit" in printed and hint in printed


def test_the_cli_prints_other_errors_without_a_hint(capsys):
    assert _client.report_rpc_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "gateway down")) == 3
    printed = capsys.readouterr().err
    assert "UNAVAILABLE: gateway down" in printed and "hint" not in printed
    assert _client.report_error(errors.PermissionDenied("no grant on job j1")) == 1
    assert "no grant on job j1" in capsys.readouterr().err
