"""TlsConfig from the environment: both halves of a pair, existing files, mTLS needs a CA."""

from __future__ import annotations

import pytest

from tests.tls.certs import CA
from workmesh.services.core.tls import TlsConfig


def test_tls_config_from_env(tmp_path):
    ca = CA(tmp_path)
    pair = ca.issue("svc")
    config = TlsConfig.from_env(
        {
            "WORKMESH_TLS_CERT": str(pair.cert),
            "WORKMESH_TLS_KEY": str(pair.key),
            "WORKMESH_TLS_CA": str(ca.pem),
            "WORKMESH_TLS_CLIENT_AUTH": "on",
        }
    )
    assert config.serves_tls and config.calls_tls and config.client_auth
    assert not TlsConfig.from_env({}).serves_tls and not TlsConfig.from_env({}).calls_tls
    flagged = TlsConfig.from_env({}, cert=str(pair.cert), key=str(pair.key))
    assert flagged.cert_file == str(pair.cert)
    for env, name in [
        ({"WORKMESH_TLS_CERT": str(pair.cert)}, "WORKMESH_TLS_KEY"),
        ({"WORKMESH_TLS_CERT": str(tmp_path / "nope.pem"), "WORKMESH_TLS_KEY": str(pair.key)}, "WORKMESH_TLS_CERT"),
        ({"WORKMESH_TLS_CLIENT_AUTH": "1"}, "WORKMESH_TLS_CLIENT_AUTH"),
    ]:
        with pytest.raises(ValueError, match=name):
            TlsConfig.from_env(env)
