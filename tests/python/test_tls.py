"""HTTPS end to end: a real server with --ssl-* options, real clients (httpx, the ssl
module, curl), certificates made for the test by trustme.

TLS runs in the C++ core (OpenSSL over the reactor, src/tls); these tests check what a
user sees: the handshake, requests both ways, scope["scheme"], client certificates,
encrypted keys, the options from the environment, and startup failures that say why and
exit as uvicorn does.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from asgi_servers import APPS_DIR, IO_BACKENDS, ServerProcess, curl_binary, run_to_exit, serve
from cryptography.hazmat.primitives import serialization

KEY_PASSWORD = "open sesame"
# For servers a single test starts: stopped (and checked) even when the test fails.
serving = contextlib.contextmanager(serve)


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    encrypted_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.test")
    paths = Pki(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
        encrypted_key=directory / "server-encrypted.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    ca.cert_pem.write_to_path(str(paths.ca))
    server.cert_chain_pems[0].write_to_path(str(paths.cert))
    server.private_key_pem.write_to_path(str(paths.key))
    client.cert_chain_pems[0].write_to_path(str(paths.client_cert))
    client.private_key_pem.write_to_path(str(paths.client_key))
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), password=None)
    paths.encrypted_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    return paths


def tls_args(pki: Pki, *extra: str) -> list[str]:
    return ["--ssl-certfile", str(pki.cert), "--ssl-keyfile", str(pki.key), *extra]


def https_url(server: ServerProcess, path: str = "/") -> str:
    return f"https://{server.host}:{server.port}{path}"


def client_context(pki: Pki, with_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_client_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def negotiated(server: ServerProcess, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    """A handshake only: the TLS version and the ALPN protocol the server agreed to."""
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version(), tls.selected_alpn_protocol()


@pytest.fixture(scope="module", params=IO_BACKENDS)
def https_server(
    request: pytest.FixtureRequest, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve(
        "dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("tls"), io=request.param, args=tls_args(pki)
    )


@pytest.fixture(scope="module", params=IO_BACKENDS)
def mtls_server(
    request: pytest.FixtureRequest, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    args = tls_args(pki, "--ssl-cert-reqs", "2", "--ssl-ca-certs", str(pki.ca))
    yield from serve(
        "dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("mtls"), io=request.param, args=args
    )


# ---- HTTPS ------------------------------------------------------------------------------


def test_startup_line_says_https(https_server: ServerProcess) -> None:
    assert f"dbridge-asgi running on https://127.0.0.1:{https_server.port}" in https_server.stderr()


def test_get_over_https_has_scheme_https(https_server: ServerProcess, pki: Pki) -> None:
    with httpx.Client(verify=client_context(pki)) as client:
        response = client.get(https_url(https_server, "/scope"))
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"


def test_post_bodies_round_trip_on_one_connection(https_server: ServerProcess, pki: Pki) -> None:
    with httpx.Client(verify=client_context(pki)) as client:
        for size in (0, 1, 16 * 1024 + 3, 1024 * 1024):
            body = bytes(i % 251 for i in range(size))
            response = client.post(https_url(https_server, "/echo"), content=body)
            assert response.status_code == 200
            assert response.content == body, f"echo of {size} bytes came back different"


def test_large_response_arrives_whole(https_server: ServerProcess, pki: Pki) -> None:
    size = 5 * 1024 * 1024 + 7
    with httpx.Client(verify=client_context(pki)) as client:
        response = client.get(https_url(https_server, f"/bytes?n={size}"))
    assert response.status_code == 200
    assert len(response.content) == size


def test_alpn_negotiates_http11(https_server: ServerProcess, pki: Pki) -> None:
    context = client_context(pki)
    context.set_alpn_protocols(["h2", "http/1.1"])
    assert negotiated(https_server, context)[1] == "http/1.1"


def test_curl_over_https(https_server: ServerProcess, pki: Pki) -> None:
    result = subprocess.run(
        [
            curl_binary(),
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            str(pki.ca),
            "--data-binary",
            "hello tls",
            https_url(https_server, "/echo"),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello tls"


def test_plain_http_on_the_https_port_fails_and_the_server_goes_on(
    https_server: ServerProcess, pki: Pki
) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{https_server.host}:{https_server.port}/scope", timeout=10)
    with httpx.Client(verify=client_context(pki)) as client:
        assert client.get(https_url(https_server, "/scope")).status_code == 200


# ---- client certificates ------------------------------------------------------------------


def test_required_client_certificate_missing_fails_the_handshake(
    mtls_server: ServerProcess, pki: Pki
) -> None:
    # In TLS 1.3 the client's side of the handshake completes before the server checks
    # its certificate; the server's alert then ends the first read.
    with pytest.raises(httpx.TransportError), httpx.Client(verify=client_context(pki)) as client:
        client.get(https_url(mtls_server, "/scope"))


def test_required_client_certificate_present_is_served(mtls_server: ServerProcess, pki: Pki) -> None:
    with httpx.Client(verify=client_context(pki, with_client_cert=True)) as client:
        response = client.get(https_url(mtls_server, "/scope"))
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"


@pytest.mark.parametrize("io", ["uring", "epoll"])
def test_optional_client_certificate_may_be_absent_or_present(
    io: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    args = tls_args(pki, "--ssl-cert-reqs", "1", "--ssl-ca-certs", str(pki.ca))
    with serving(
        "dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("optional"), io=io, args=args
    ) as server:
        for with_cert in (False, True):
            with httpx.Client(verify=client_context(pki, with_client_cert=with_cert)) as client:
                assert client.get(https_url(server, "/scope")).status_code == 200, f"client cert: {with_cert}"


# ---- options ----------------------------------------------------------------------------


@pytest.mark.parametrize("io", ["uring", "epoll"])
def test_encrypted_key_with_its_password(io: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    args = [
        "--ssl-certfile",
        str(pki.cert),
        "--ssl-keyfile",
        str(pki.encrypted_key),
        "--ssl-keyfile-password",
        KEY_PASSWORD,
    ]
    with (
        serving(
            "dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("password"), io=io, args=args
        ) as server,
        httpx.Client(verify=client_context(pki)) as client,
    ):
        assert client.get(https_url(server, "/scope")).status_code == 200


def test_options_from_the_environment(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"DBRIDGE_ASGI_SSL_CERTFILE": str(pki.cert), "UVICORN_SSL_KEYFILE": str(pki.key)}
    with (
        serving("dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("env"), io="epoll", env=env) as server,
        httpx.Client(verify=client_context(pki)) as client,
    ):
        assert client.get(https_url(server, "/scope")).json()["scheme"] == "https"


def test_ssl_version_5_pins_tls_1_2(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    args = tls_args(pki, "--ssl-version", str(int(ssl.PROTOCOL_TLSv1_2)))
    with serving(
        "dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("v12"), io="uring", args=args
    ) as server:
        assert negotiated(server, client_context(pki))[0] == "TLSv1.2"


def test_defaults_are_uvicorns() -> None:
    from dbridge_asgi.config import CERT_NONE, SSL_PROTOCOL_VERSION

    assert SSL_PROTOCOL_VERSION == ssl.PROTOCOL_TLS_SERVER
    assert CERT_NONE == ssl.CERT_NONE


# ---- startup failures -------------------------------------------------------------------


def test_missing_key_file_exits_like_uvicorn_with_one_clear_line(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "absent.key"
    args = ["--ssl-certfile", str(pki.cert), "--ssl-keyfile", str(missing), "--lifespan", "off"]
    ours = run_to_exit("dbridge-asgi", "raw_app:app", args)
    theirs = run_to_exit("uvicorn", "raw_app:app", args)
    assert theirs.returncode == 1, theirs.stderr
    assert ours.returncode == theirs.returncode, ours.stderr
    assert str(missing) in ours.stderr
    assert "No such file or directory" in ours.stderr
    assert "Traceback" not in ours.stderr


def test_wrong_key_password_names_the_key(pki: Pki) -> None:
    args = [
        "--ssl-certfile",
        str(pki.cert),
        "--ssl-keyfile",
        str(pki.encrypted_key),
        "--ssl-keyfile-password",
        "not it",
        "--lifespan",
        "off",
    ]
    result = run_to_exit("dbridge-asgi", "raw_app:app", args)
    assert result.returncode == 1, result.stderr
    assert str(pki.encrypted_key) in result.stderr
    assert "bad decrypt" in result.stderr


def test_key_that_does_not_match_the_certificate_is_refused(pki: Pki) -> None:
    args = ["--ssl-certfile", str(pki.cert), "--ssl-keyfile", str(pki.client_key), "--lifespan", "off"]
    result = run_to_exit("dbridge-asgi", "raw_app:app", args)
    assert result.returncode == 1, result.stderr
    assert "key values mismatch" in result.stderr


def test_ciphers_that_select_nothing_are_refused(pki: Pki) -> None:
    result = run_to_exit(
        "dbridge-asgi", "raw_app:app", tls_args(pki, "--ssl-ciphers", "NOPE", "--lifespan", "off")
    )
    assert result.returncode == 1, result.stderr
    assert "--ssl-ciphers 'NOPE'" in result.stderr


def test_key_without_certificate_is_refused(pki: Pki) -> None:
    result = run_to_exit("dbridge-asgi", "raw_app:app", ["--ssl-keyfile", str(pki.key), "--lifespan", "off"])
    assert result.returncode == 1, result.stderr
    assert "--ssl-certfile" in result.stderr


def test_scope_json_is_unchanged_by_tls(https_server: ServerProcess, pki: Pki) -> None:
    # The same keys as over plain HTTP: no "tls" extension is advertised (not implemented).
    with httpx.Client(verify=client_context(pki)) as client:
        scope = client.get(https_url(https_server, "/scope")).json()
    assert "tls" not in json.dumps(scope.get("extensions") or {})


def test_tls_failure_is_a_debug_line(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    args = tls_args(pki, "--log-level", "debug")
    with serving(
        "dbridge-asgi", "raw_app:app", tmp_path_factory.mktemp("debug"), io="epoll", args=args
    ) as server:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{server.host}:{server.port}/scope", timeout=10)
        server.wait_for_output("TLS connection closed: ")


def test_config_loads_tls_for_run_and_exits_1_on_a_bad_file(pki: Pki, tmp_path: Path) -> None:
    from dbridge_asgi.config import Config

    config = Config("raw_app:app", app_dir=str(APPS_DIR), ssl_certfile=pki.cert, ssl_keyfile=pki.key)
    config.load()
    assert config.is_ssl
    assert config.tls is not None

    broken = Config(
        "raw_app:app", app_dir=str(APPS_DIR), ssl_certfile=pki.cert, ssl_keyfile=tmp_path / "none"
    )
    with pytest.raises(SystemExit) as exit_info:
        broken.load()
    assert exit_info.value.code == 1
