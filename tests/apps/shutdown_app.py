"""A raw ASGI app for the graceful-shutdown tests; it prints markers to stderr.

    /slow      answers "done" after SLOW_SECONDS (printed marker when it starts)
    /forever   streams a chunk every 50 ms until receive() says http.disconnect
    /hang      sleeps for a minute before answering (printed marker when it starts)
    /held?release=PATH
               answers "released" once the file PATH exists (printed marker when it starts)
    anything   "ok"
The lifespan prints a marker when it is told to shut down.
"""

import asyncio
import os
import sys
from urllib.parse import parse_qs

SLOW_SECONDS = 1.0
SLOW_STARTED = "shutdown-app: slow request started"
HANG_STARTED = "shutdown-app: hanging request started"
HELD_STARTED = "shutdown-app: held request started"
STREAM_STARTED = "shutdown-app: stream started"
DISCONNECT_SEEN = "shutdown-app: disconnect seen"
LIFESPAN_SHUTDOWN = "shutdown-app: lifespan shutdown"


def note(text):
    print(text, file=sys.stderr, flush=True)


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            note(LIFESPAN_SHUTDOWN)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def forever(receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    note(STREAM_STARTED)
    disconnected = asyncio.ensure_future(receive())
    try:
        while True:
            while not disconnected.done():
                await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
                await asyncio.wait([disconnected], timeout=0.05)
            message = disconnected.result()
            if message["type"] == "http.disconnect":
                note(DISCONNECT_SEEN)
                return
            disconnected = asyncio.ensure_future(receive())  # the (empty) request body
    finally:
        disconnected.cancel()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/forever":
        await forever(receive, send)
        return
    body = b"ok"
    if scope["path"] == "/hang":
        note(HANG_STARTED)
        await asyncio.sleep(60)
    if scope["path"] == "/held":
        # Held until the test says so, which it does only after the shutdown has begun.
        release = parse_qs(scope["query_string"].decode())["release"][0]
        note(HELD_STARTED)
        while not os.path.exists(release):
            await asyncio.sleep(0.05)
        body = b"released"
    if scope["path"] == "/slow":
        note(SLOW_STARTED)
        await asyncio.sleep(SLOW_SECONDS)
        body = b"done"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
