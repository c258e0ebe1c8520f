"""Which contextvars a request sees: one set when the module is imported (inside the
server's own context in both servers) shows in requests, unless --reset-contextvars."""

import contextvars

VAR = contextvars.ContextVar("dbridge_test_var", default="unset")
VAR.set("set-at-import")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": VAR.get().encode()})
