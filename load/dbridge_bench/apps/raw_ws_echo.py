"""Raw ASGI WebSocket echo: the server's own cost per message, with no framework on top.
Plain HTTP gets a short answer (the harness probes with GET before it starts the load)."""

ACCEPT = {"type": "websocket.accept"}
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}
BODY = {"type": "http.response.body", "body": b"ok"}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(START)
        await send(BODY)
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send(ACCEPT)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})
