"""Real receivers for the notification tests: an HTTP server that records every request and
answers with the status it is told, and an aiosmtpd SMTP server (plain, STARTTLS or TLS, with
AUTH) with a self-signed certificate made by openssl. Both run on loopback ports in this process."""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import threading
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support import free_port
from workmesh.services.gateway.notify import SIGNATURE_HEADER, sign


@dataclass
class Hit:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        return self.headers.get(SIGNATURE_HEADER) == sign(secret, self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 recording POSTs; answers ``status`` (settable at any time)."""

    def __init__(self, port: int = 0) -> None:
        self.hits: list[Hit] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.hits.append(Hit(self.path, {k: v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="webhook-receiver")
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextlib.contextmanager
def receiver(port: int = 0):
    started = Receiver(port)
    try:
        yield started
    finally:
        started.close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, made by openssl (skip without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS SMTP tests")
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class SmtpServer:
    """aiosmtpd on 127.0.0.1: ``security`` none, starttls (required) or tls; optional AUTH."""

    def __init__(
        self, security: str = "none", cert: tuple[Path, Path] | None = None, credentials: tuple[str, str] | None = None
    ) -> None:
        self.inbox = _Inbox()
        self.logins: list[str] = []
        self.port = free_port()
        kwargs: dict = {}
        context = None
        if security != "none":
            assert cert is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if credentials is not None:

            def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
                ok = (auth_data.login.decode(), auth_data.password.decode()) == credentials
                if ok:
                    self.logins.append(auth_data.login.decode())
                return AuthResult(success=ok, handled=False)

            # aiosmtpd counts only STARTTLS as TLS for auth_require_tls (with implicit TLS it would
            # hide AUTH), so it is required for STARTTLS alone; a TLS server is encrypted throughout.
            kwargs.update(authenticator=authenticate, auth_require_tls=security == "starttls", auth_required=True)
        with warnings.catch_warnings():
            # "AUTH without TLS" is what the plain-SMTP test means to exercise.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            self._controller = Controller(
                self.inbox,
                hostname="127.0.0.1",
                port=self.port,
                ssl_context=context if security == "tls" else None,
                **kwargs,
            )
            self._controller.start()

    @property
    def mails(self) -> list[Mail]:
        return self.inbox.mails

    def close(self) -> None:
        self._controller.stop()
