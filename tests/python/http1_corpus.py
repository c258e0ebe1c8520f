"""The HTTP/1.1 malformed-input and smuggling corpus (tests/corpus/http1.toml): loading, and
sending one case to a server.

Two ways to run a case:

- `run_strict` (test_http1_corpus.py, against dbridge-asgi): reads exactly the responses
  the case expects, checks each status line and each app answer byte for byte, then
  either waits for the close or proves the connection still serves a request. No timing
  is involved: a missing response or a missing close is a socket timeout, a failure.
- `observe` (http1_differential.py, against any server): records whatever comes back
  within a short wait, so servers that disagree with the corpus can be described
  rather than failed.
"""

from __future__ import annotations

import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from raw_http import Response, ResponseReader, ServerClosed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the test extras install tomli there
    import tomli as tomllib

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
from echo_app import echo_line

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "http1.toml"

# RFC 9110 §15 reason phrases for the statuses the corpus expects.
REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}

# A request sent after the expected responses to prove the connection is still usable and
# that nothing of the case is left in the server's input.
PROBE_REQUEST = b"GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n"
PROBE_ANSWER = echo_line("GET", "/probe", "", "1.1", b"")

_REPEAT = re.compile(r"\{\{(\d+)\*(.*?)\}\}", re.DOTALL)


def _expand(text: str) -> str:
    """`{{N*text}}` -> text repeated N times."""
    return _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)


@dataclass(frozen=True)
class Expected:
    """One response: made by the server (`status`) or by the app (`app` = method and target)."""

    status: int
    app: str | None = None  # "<method> <path>[?query]" as the app reports it
    body: bytes = b""  # what the app must have read
    version: str = "1.1"

    @property
    def head_request(self) -> bool:
        return self.app is not None and self.app.startswith("HEAD ")

    def echo(self) -> bytes:
        assert self.app is not None
        method, _, target = self.app.partition(" ")
        path, _, query = target.partition("?")
        return echo_line(method, path, query, self.version, self.body)

    def describe(self) -> str:
        if self.app is None:
            return str(self.status)
        return f"app {self.app}" + (f" ({len(self.body)} B)" if self.body else "")


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    request: bytes
    expect: tuple[Expected, ...]
    close: bool
    half_close: bool = False
    allow_100: bool = False
    xfail: str | None = None

    def describe_expected(self) -> str:
        parts = [e.describe() for e in self.expect] or ["no response"]
        return ", ".join(parts) + (", close" if self.close else ", open")


def _expected(entry: dict, case_id: str) -> Expected:
    unknown = set(entry) - {"status", "app", "body", "version"}
    if unknown or ("status" in entry) == ("app" in entry):
        raise ValueError(
            f"case {case_id}: a response is {{status = N}} or {{app = ..., body = ...}}: {entry}"
        )
    if "status" in entry:
        return Expected(status=int(entry["status"]))
    return Expected(
        status=200,
        app=_expand(entry["app"]),
        body=_expand(entry.get("body", "")).encode("latin-1"),
        version=entry.get("version", "1.1"),
    )


def load_cases(path: Path = CORPUS) -> list[Case]:
    with open(path, "rb") as f:
        raw = tomllib.load(f)["case"]
    cases, seen = [], set()
    for entry in raw:
        case_id = entry["id"]
        if case_id in seen:
            raise ValueError(f"case id {case_id!r} appears twice in {path}")
        seen.add(case_id)
        unknown = set(entry) - {
            "id",
            "source",
            "request",
            "expect",
            "close",
            "half_close",
            "allow_100",
            "xfail",
        }
        if unknown:
            raise ValueError(f"case {case_id}: unknown keys {sorted(unknown)}")
        if not entry.get("source"):
            raise ValueError(f"case {case_id}: say where the rule comes from (source = ...)")
        cases.append(
            Case(
                id=case_id,
                source=entry["source"],
                request=_expand(entry["request"]).encode("latin-1"),
                expect=tuple(_expected(e, case_id) for e in entry["expect"]),
                close=bool(entry["close"]),
                half_close=bool(entry.get("half_close", False)),
                allow_100=bool(entry.get("allow_100", False)),
                xfail=entry.get("xfail"),
            )
        )
    return cases


# ---- strict run --------------------------------------------------------------------------


def _status_line(response: Response) -> str:
    return response.raw_head.split(b"\r\n", 1)[0].decode("latin-1")


def _summary(responses: list[Response]) -> str:
    return "; ".join(f"{_status_line(r)!r} body={r.body[:120]!r}" for r in responses) or "none"


def run_strict(sock: socket.socket, case: Case) -> None:
    """Sends the case and asserts the exact outcome; `sock` is a fresh connection with a timeout."""
    sock.sendall(case.request)
    if case.half_close:
        sock.shutdown(socket.SHUT_WR)
    reader = ResponseReader(sock)
    got: list[Response] = []

    def fail(what: str) -> None:
        raise AssertionError(
            f"{case.id}: {what}\n  expected: {case.describe_expected()}\n  received: {_summary(got)}"
        )

    for i, expected in enumerate(case.expect):
        try:
            response = reader.read_response(head_request=expected.head_request)
            if i == 0 and case.allow_100 and response.status == 100:
                assert _status_line(response) == "HTTP/1.1 100 Continue", _status_line(response)
                response = reader.read_response(head_request=expected.head_request)
        except ServerClosed as closed:
            fail(f"the connection closed before response {i + 1} ({closed})")
        except ConnectionResetError:
            fail(f"the connection was reset before response {i + 1}")
        got.append(response)
        want_line = f"HTTP/1.1 {expected.status} {REASONS[expected.status]}"
        if _status_line(response) != want_line:
            fail(f"response {i + 1}: status line {_status_line(response)!r}, expected {want_line!r}")
        if expected.app is not None:
            echo = expected.echo()
            if expected.head_request:
                # RFC 9110 §9.3.2: the fields of the GET response, no content.
                if response.header("content-length") != str(len(echo)):
                    fail(f"response {i + 1}: HEAD content-length {response.header('content-length')}")
            elif response.body != echo:
                fail(f"response {i + 1}: the app saw {response.body!r}, expected {echo!r}")

    if case.close:
        if got and (got[-1].header("connection") or "").lower() != "close":
            # RFC 9112 §9.6: the last response before a close says so.
            fail("the last response does not carry 'connection: close'")
        try:
            closed = reader.closed_by_server()
        except socket.timeout:
            fail("the server kept the connection open")
        if not closed:
            extra = reader.buffer
            fail(f"expected a clean close (FIN), got more bytes or a reset: {extra[:200]!r}")
        return

    try:
        sock.sendall(PROBE_REQUEST)
        probe = reader.read_response()
    except (ServerClosed, ConnectionResetError, BrokenPipeError) as error:
        fail(f"the connection should stay open, but the next request failed: {error!r}")
    got.append(probe)
    if _status_line(probe) != "HTTP/1.1 200 OK" or probe.body != PROBE_ANSWER:
        fail("the request sent after the case was not answered as expected (bytes of the case left over?)")


# ---- observation, for servers that may disagree --------------------------------------------


@dataclass
class Observed:
    tokens: list[str]  # one per final response: "400", or "app <echo>" for the app's answer
    ending: str  # "close", "open", "reset", or "garbled: ..." when the bytes were not HTTP

    def describe(self) -> str:
        shown = []
        for token in self.tokens:
            if not token.startswith("app "):
                shown.append(token)
            elif token.endswith(" (HEAD)"):
                shown.append("app " + token[4:-7].rpartition(" HTTP/")[0])
            else:
                # "app <method> <target> HTTP/<version> <length> <hash>"
                request, version, length, _ = token[4:].rsplit(" ", 3)
                if len(request) > 40:
                    request = request[:39] + "…"
                text = f"app {request}"
                if version != "HTTP/1.1":
                    text += f" {version}"
                if length != "0":
                    text += f" ({length} B)"
                shown.append(text)
        return ", ".join(shown or ["no response"]) + ", " + self.ending


def expected_observation(case: Case) -> Observed:
    tokens = []
    for e in case.expect:
        if e.app is None:
            tokens.append(str(e.status))
        elif e.head_request:
            tokens.append(f"app {e.app} HTTP/{e.version} (HEAD)")
        else:
            tokens.append("app " + e.echo().decode("utf-8", "replace"))
    return Observed(tokens, "close" if case.close else "open")


def _token(response: Response) -> str:
    """The echo app's answer as "app <echo line>", any other response as its status code."""
    text = response.body.decode("utf-8", "replace")
    parts = text.rsplit(" ", 3)
    if response.status == 200 and len(parts) == 4 and parts[1].startswith("HTTP/"):
        return "app " + text
    return str(response.status)


def observe(host: str, port: int, case: Case, first_wait: float = 3.0, grace: float = 0.5) -> Observed:
    """What a server answers to the case: responses arriving within `first_wait` (the first) or
    `grace` (each next one) seconds, then whether it closed."""
    tokens: list[str] = []
    with socket.create_connection((host, port), timeout=first_wait) as sock:
        try:
            sock.sendall(case.request)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            return Observed(tokens, f"reset while sending ({type(error).__name__})")
        reader = ResponseReader(sock)
        index = 0
        while True:
            head_request = index < len(case.expect) and case.expect[index].head_request
            try:
                response = reader.read_response(head_request=head_request)
            except ServerClosed:
                return Observed(tokens, "close" if not reader.buffer else f"garbled: {reader.buffer[:40]!r}")
            except socket.timeout:
                return Observed(
                    tokens, "open" if not reader.buffer else f"incomplete: {reader.buffer[:40]!r}"
                )
            except ConnectionResetError:
                return Observed(tokens, "reset")
            except (AssertionError, ValueError, IndexError) as error:
                return Observed(tokens, f"garbled: {error}")
            sock.settimeout(grace)
            if response.status == 100 and case.allow_100:
                continue
            if response.status == 200 and head_request:
                tokens.append(f"app {case.expect[index].app} HTTP/{case.expect[index].version} (HEAD)")
            else:
                tokens.append(_token(response))
            index += 1
