"""A raw ASGI app for the browser interop test (tests/python/test_websocket_browser.py):
a page whose script talks WebSocket to this app from headless Chromium and reports
what it saw.

GET  /              the test page: its script runs the checks and POSTs its results to /report
POST /report        keeps the page's results (JSON)
GET  /report        {"page": the page's results or null, "app": what the WebSocket endpoints saw}
WS   /echo          accept with "v1.dbridge" when offered, echo every message until the
                    disconnect, then note the offered subprotocols and the disconnect message
WS   /server-close  accept, send "bye", close with 4001 and a non-ASCII reason, then note
                    what receive() gives
"""

from __future__ import annotations

import json

from app_support import run_lifespan

_page_report: dict | None = None
_seen: list = []

# How long the page leaves its socket idle before the last echo: longer than the test's
# --ws-ping-interval plus --ws-ping-timeout, so the socket stays open only if the server
# takes Chromium's pongs as answers to its keepalive pings.
IDLE_MS = 3000

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dbridge-asgi WebSocket interop</title></head>
<body><pre id="log"></pre>
<script>
"use strict";
const results = {};
const base = `ws://${location.host}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function within(ms, what, promise) {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error(`timed out: ${what}`); })]);
}

// A WebSocket with a message inbox: next() gives the next message, closed the close event.
function open(path, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, protocols);
    ws.binaryType = "arraybuffer";
    const inbox = [], waiting = [];
    let closedWith = null;
    ws.onmessage = (e) => (waiting.length ? waiting.shift().resolve(e.data) : inbox.push(e.data));
    ws.closed = new Promise((r) => {
      ws.onclose = (e) => {
        closedWith = `closed with ${e.code} ${e.reason}`;
        waiting.splice(0).forEach((w) => w.reject(new Error(`${closedWith} while waiting on ${path}`)));
        r({code: e.code, reason: e.reason, wasClean: e.wasClean});
      };
    });
    ws.next = () => within(20000, `a message on ${path}`,
      inbox.length ? Promise.resolve(inbox.shift())
        : closedWith ? Promise.reject(new Error(`${closedWith} before a message on ${path}`))
        : new Promise((resolve, reject) => waiting.push({resolve, reject})));
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`WebSocket error on ${path}`));
  });
}

function describe(x) {
  if (typeof x === "string") return `text of ${x.length} chars`;
  if (x instanceof ArrayBuffer) return `binary of ${x.byteLength} bytes`;
  return String(x);
}

function sameBytes(a, b) {
  a = new Uint8Array(a); b = new Uint8Array(b);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function randomBytes(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

// Sends `data` and notes "echoed" or what came back instead.
async function echo(ws, name, data) {
  ws.send(data);
  const got = await ws.next();
  const same = typeof data === "string" ? got === data : got instanceof ArrayBuffer && sameBytes(got, data);
  const sent = describe(typeof data === "string" ? data : data.buffer);
  results[name] = same ? "echoed" : `sent ${sent}, got ${describe(got)}`;
}

async function echoChecks() {
  const ws = await within(20000, "open /echo", open("/echo", ["v2.dbridge", "v1.dbridge"]));
  results.protocol = ws.protocol;
  results.extensions = ws.extensions;
  await echo(ws, "ascii_text", "hello");
  await echo(ws, "empty_text", "");
  await echo(ws, "non_ascii_text", "h\\u00e9llo w\\u00f6rld \\u2713 \\u65e5\\u672c \\ud83d\\ude00");
  // ~200 KB of 1- to 4-byte UTF-8 characters
  await echo(ws, "large_text", "\\u00fcn\\u00efc\\u00f6d\\u00e9 \\u2713 \\ud83d\\ude00 ".repeat(10000));
  await echo(ws, "small_binary", Uint8Array.of(0, 1, 127, 128, 255));
  await echo(ws, "large_random_binary", randomBytes(1 << 20));
  await echo(ws, "large_repetitive_binary", new Uint8Array(300000).fill(7));
  await sleep(%(idle_ms)d);
  await echo(ws, "text_after_idle", "still open");
  ws.close(4000, "done \\u2713");
  results.client_close = await within(20000, "the close of /echo", ws.closed);
}

async function serverCloseChecks() {
  const ws = await within(20000, "open /server-close", open("/server-close"));
  results.server_close_message = await ws.next();
  results.server_close = await within(20000, "the close of /server-close", ws.closed);
}

(async () => {
  try {
    await echoChecks();
    await serverCloseChecks();
  } catch (e) {
    results.error = String(e);
  }
  document.getElementById("log").textContent = JSON.stringify(results, null, 1);
  await fetch("/report", {method: "POST", headers: {"content-type": "application/json"},
                          body: JSON.stringify(results)});
})();
</script></body></html>
""" % {"idle_ms": IDLE_MS}


async def respond(send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def http(scope, receive, send) -> None:
    global _page_report
    path, method = scope["path"], scope["method"]
    if path == "/" and method == "GET":
        await respond(send, 200, PAGE.encode(), b"text/html; charset=utf-8")
    elif path == "/report" and method == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        _page_report = json.loads(body)
        await respond(send, 204, b"", b"text/plain")
    elif path == "/report" and method == "GET":
        report = json.dumps({"page": _page_report, "app": _seen}).encode()
        await respond(send, 200, report, b"application/json")
    else:
        await respond(send, 404, b"not found", b"text/plain")


async def websocket(scope, receive, send) -> None:
    path = scope["path"]
    connect = await receive()
    assert connect["type"] == "websocket.connect", connect
    if path == "/echo":
        offered = scope["subprotocols"]
        chosen = "v1.dbridge" if "v1.dbridge" in offered else None
        await send({"type": "websocket.accept", "subprotocol": chosen})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                _seen.append({"path": path, "subprotocols": offered, "disconnect": message})
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path == "/server-close":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 4001, "reason": "server closing \u2713"})
        _seen.append({"path": path, "disconnect": await receive()})
    else:
        await send({"type": "websocket.close", "code": 4404})


async def app(scope, receive, send):
    if scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        await run_lifespan(receive, send)
