"""JWT verification with PyJWT against real keys: HS256, RS256 and ES256 from a JWKS file and
from a JWKS URL served over HTTP, claim names, and every way a token must be refused."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from tests.auth.keys import SECRET, KeyPair, claims, hs256, jwks
from tests.support import run
from workmesh.services.core.auth import AuthConfig, JwtConfig, JwtVerifier
from workmesh.services.core.errors import Unauthenticated, Unavailable


def verify(config: JwtConfig, token: str):
    return run(JwtVerifier(config).verify(token))


def refused(config: JwtConfig, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        verify(config, token)
    message = str(info.value)
    assert not any(part in message for part in token.split(".") if len(part) > 8)  # never the token
    return message


HS = JwtConfig(secret=SECRET)


@pytest.fixture(scope="module")
def rsa_key():
    return KeyPair("rsa-1", "RS256")


@pytest.fixture(scope="module")
def ec_key():
    return KeyPair("ec-1", "ES256")


@pytest.fixture
def jwks_file(tmp_path, rsa_key, ec_key):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(rsa_key, ec_key)))
    return JwtConfig(jwks_file=str(path))


def test_hs256_token_gives_tenant_subject_scopes_and_groups():
    identity, exp = verify(HS, hs256(groups=["planners"]))
    assert (identity.tenant, identity.subject) == ("acme", "alice")
    assert identity.scopes == {"types:read", "jobs:read", "jobs:submit"} and identity.groups == {"planners"}
    assert exp > time.time()


def test_rs256_and_es256_from_a_jwks_file(jwks_file, rsa_key, ec_key):
    for key in (rsa_key, ec_key):
        identity, _ = verify(jwks_file, key.sign(claims(sub=f"user-{key.kid}")))
        assert identity.subject == f"user-{key.kid}"


def test_keycloak_style_claim_names_and_nested_roles():
    config = JwtConfig(
        secret=SECRET,
        subject_claim="preferred_username",
        tenant_claim="org.id",
        scopes_claim="realm_access.roles",
        groups_claim="grp",
    )
    token = jwt.encode(
        {
            "preferred_username": "bob",
            "org": {"id": "harbour"},
            "exp": int(time.time()) + 60,
            "realm_access": {"roles": ["jobs:read", "series:read"]},
            "grp": "a,b",
        },
        SECRET,
        algorithm="HS256",
    )
    identity, _ = verify(config, token)
    assert (identity.tenant, identity.subject) == ("harbour", "bob")
    assert identity.scopes == {"jobs:read", "series:read"} and identity.groups == {"a", "b"}


def test_default_tenant_for_single_tenant_providers():
    token = jwt.encode({"sub": "carol", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert "'tenant' claim" in refused(HS, token)
    identity, _ = verify(JwtConfig(secret=SECRET, default_tenant="solo"), token)
    assert identity.tenant == "solo"


def test_issuer_and_audience_are_checked_when_configured():
    config = JwtConfig(secret=SECRET, issuer="https://idp.example/realms/w", audience="workmesh")
    good = hs256(iss="https://idp.example/realms/w", aud="workmesh")
    assert verify(config, good)[0].subject == "alice"
    assert "audience" in refused(config, hs256(iss="https://idp.example/realms/w", aud="other"))
    assert "issuer" in refused(config, hs256(iss="https://evil.example", aud="workmesh"))
    assert "'iss' claim" in refused(config, hs256(aud="workmesh"))


@pytest.mark.parametrize(
    "case, reason",
    [
        ("expired", "expired"),
        ("not_yet_valid", "not yet valid"),
        ("no_exp", "'exp' claim"),
        ("tampered", "signature does not verify"),
        ("other_secret", "signature does not verify"),
        ("alg_none", "algorithm not accepted"),
        ("malformed", "malformed"),
        ("no_sub", "'sub' claim"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(case, reason):
    now = int(time.time())
    if case == "expired":
        token = hs256(ttl=-60)  # beyond the 10 s leeway
    elif case == "not_yet_valid":
        token = hs256(nbf=now + 120)
    elif case == "no_exp":
        token = jwt.encode({"sub": "a", "tenant": "t"}, SECRET, algorithm="HS256")
    elif case == "tampered":
        head, body, sig = hs256().split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=="))
        payload["tenant"] = "other"
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        token = f"{head}.{body}.{sig}"
    elif case == "other_secret":
        token = jwt.encode(claims(), "x" * 40, algorithm="HS256")
    elif case == "alg_none":
        token = jwt.encode(claims(), None, algorithm="none")
    elif case == "malformed":
        token = "not-a-jwt"
    else:
        token = jwt.encode({"tenant": "t", "exp": now + 60}, SECRET, algorithm="HS256")
    assert reason in refused(HS, token)


def test_leeway_accepts_small_clock_skew():
    assert verify(HS, hs256(ttl=-3))[0].subject == "alice"  # 3 s past exp, within 10 s


def test_unknown_key_id_and_algorithm_confusion_are_refused(jwks_file, rsa_key):
    stranger = KeyPair("rsa-9", "RS256")
    assert "unknown key id" in refused(jwks_file, stranger.sign(claims()))
    assert "no key id" in refused(jwks_file, jwt.encode(claims(), rsa_key.private, algorithm="RS256"))
    # HS256 signed with the public key as the secret: HS256 is not accepted from a JWKS.
    assert "algorithm not accepted" in refused(jwks_file, hs256())
    # Signed by an EC key but naming the RSA key's id: the RSA key does not verify it.
    impostor = KeyPair("rsa-1", "ES256")
    assert "does not match its key" in refused(jwks_file, impostor.sign(claims()))


class _Jwks(BaseHTTPRequestHandler):
    body = b""
    hits = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def jwks_url(rsa_key, ec_key):
    handler = type("Handler", (_Jwks,), {"body": json.dumps(jwks(rsa_key, ec_key)).encode(), "hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/certs", handler
    server.shutdown()
    server.server_close()


def test_jwks_url_is_fetched_once_and_cached(jwks_url, rsa_key, ec_key):
    url, handler = jwks_url
    verifier = JwtVerifier(JwtConfig(jwks_url=url))

    async def main():
        for key in (rsa_key, ec_key, rsa_key):
            identity, _ = await verifier.verify(key.sign(claims(sub=key.kid)))
            assert identity.subject == key.kid
        with pytest.raises(Unauthenticated, match="unknown key id"):
            await verifier.verify(KeyPair("nope", "ES256").sign(claims()))

    run(main())
    assert 1 <= handler.hits <= 2  # once, plus at most one refresh for the unknown key id


def test_unreachable_jwks_url_is_unavailable(rsa_key):
    from tests.support import free_port

    config = JwtConfig(jwks_url=f"http://127.0.0.1:{free_port()}/certs")
    with pytest.raises(Unavailable):
        verify(config, rsa_key.sign(claims()))


def test_config_from_env():
    config = AuthConfig.from_env(
        {
            "WORKMESH_AUTH": "on",
            "WORKMESH_JWT_SECRET": SECRET,
            "WORKMESH_JWT_AUDIENCE": "workmesh",
            "WORKMESH_JWT_TENANT_CLAIM": "org",
            "WORKMESH_JWT_LEEWAY": "5",
            "WORKMESH_TOKEN_CACHE_SECONDS": "2",
        }
    )
    assert config.enabled and config.jwt.audience == "workmesh" and config.jwt.tenant_claim == "org"
    assert config.jwt.leeway == 5 and config.token_cache_seconds == 2
    assert SECRET not in repr(config) and SECRET not in config.describe()
    assert not AuthConfig.from_env({}).enabled
    assert "OFF" in AuthConfig.from_env({}).describe()
    for env, name in [
        ({"WORKMESH_AUTH": "maybe"}, "WORKMESH_AUTH"),
        ({"WORKMESH_JWT_SECRET": "short"}, "WORKMESH_JWT_SECRET"),
        ({"WORKMESH_JWT_ALGORITHMS": "HS256"}, "WORKMESH_JWT_ALGORITHMS"),
        ({"WORKMESH_JWT_LEEWAY": "-1"}, "WORKMESH_JWT_LEEWAY"),
    ]:
        with pytest.raises(ValueError, match=name):
            AuthConfig.from_env(env)
