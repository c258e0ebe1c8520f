"""WebSocket "echo" endpoints that get it wrong, one path per failure dbridge-wsload (the
benchmark's WebSocket load generator) must report, by kind:

  /echo     a correct echo (the control)
  /reverse  echoes each text message reversed: same length, other bytes -> mismatch
  /short    echoes each message without its last byte -> mismatch
  /bytes    echoes a text message as a binary one -> mismatch
  /once     echoes one message, then closes with 1000 -> closed
  /deny     closes before accepting (the server answers 403) -> handshake
  /silent   accepts and never answers -> timeout
"""


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["type"] != "websocket":
        return
    path = scope["path"]
    await receive()  # websocket.connect
    if path == "/deny":
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if path == "/silent":
            continue
        if path == "/reverse":
            reply = {"type": "websocket.send", "text": text[::-1]}
        elif path == "/short":
            reply = {"type": "websocket.send", "text": text[:-1]}
        elif path == "/bytes":
            reply = {"type": "websocket.send", "bytes": text.encode()}
        elif text is None:
            reply = {"type": "websocket.send", "bytes": message["bytes"]}
        else:
            reply = {"type": "websocket.send", "text": text}
        await send(reply)
        if path == "/once":
            await send({"type": "websocket.close", "code": 1000})
            return
